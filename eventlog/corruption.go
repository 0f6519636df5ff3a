package eventlog

import (
	"fmt"

	"github.com/stratadb/strata/store"
)

// CorruptionError locates a record that failed its integrity check. It
// matches store.ErrCorrupt.
type CorruptionError struct {
	Segment string // segment file name
	Offset  int64  // byte offset of the bad frame in the segment
	Reason  string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("eventlog: corrupt record in segment %s at offset %d: %s", e.Segment, e.Offset, e.Reason)
}

// Is makes errors.Is(err, store.ErrCorrupt) hold.
func (e *CorruptionError) Is(target error) bool { return target == store.ErrCorrupt }
