package eventlog

import (
	"context"
	"fmt"
	"os"
)

// VerifyReport summarises a full check of a log directory.
type VerifyReport struct {
	Segments int
	Records  uint64
	Bytes    int64
	Head     uint64 // position of the last intact, complete append
	// TornTail is set when the last segment ends in an incomplete write,
	// which the next Open truncates; it is not corruption.
	TornTail bool
}

// Verify checks every record of every segment in dir, read-only; it does
// not need the log to be closed, though a log being written may show a torn
// tail. The first bad record is reported as a *CorruptionError (matching
// store.ErrCorrupt) naming the segment file and byte offset.
func Verify(ctx context.Context, dir string) (VerifyReport, error) {
	var rep VerifyReport
	bases, err := listSegments(dir)
	if err != nil {
		return rep, fmt.Errorf("eventlog: list segments: %w", err)
	}
	next := uint64(1)
	if len(bases) > 0 {
		next = bases[0]
	}
	for i, b := range bases {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		s, err := openSegmentReader(dir, b)
		if err != nil {
			return rep, err
		}
		rep, next, err = verifySegment(s, i == len(bases)-1, next, rep)
		s.r.Close()
		if err != nil {
			return rep, err
		}
	}
	rep.Head = next - 1
	if len(bases) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return rep, fmt.Errorf("eventlog: %w", err)
		}
	}
	return rep, nil
}

func verifySegment(s *segment, isLast bool, next uint64, rep VerifyReport) (VerifyReport, uint64, error) {
	sc, err := checkSegment(s)
	if err != nil {
		return rep, next, err
	}
	if s.base != next {
		return rep, next, &CorruptionError{Segment: s.name, Offset: 0,
			Reason: fmt.Sprintf("segment starts at position %d, but the previous one ends at %d", s.base, next-1)}
	}
	rep.Segments++
	rep.Bytes += sc.size
	rep.Records += sc.records
	if !sc.clean() {
		if err := damage(s, &sc, isLast, 0); err != nil {
			return rep, next, err
		}
		rep.TornTail = true
	}
	return rep, sc.commitNext, nil
}
