package store

import (
	"errors"
	"fmt"
)

// Sentinel errors for conditions callers act on. Backends wrap them with
// context; test with errors.Is.
var (
	// ErrWrongExpectedVersion: the stream's version did not satisfy the
	// append's expected version. Reload and retry the command.
	ErrWrongExpectedVersion = errors.New("store: wrong expected version")
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("store: stream not found")
	// ErrEventTooLarge: an event exceeds the store's maximum event size.
	ErrEventTooLarge = errors.New("store: event too large")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt: stored data failed its integrity check.
	ErrCorrupt = errors.New("store: corrupt data")
)

// WrongExpectedVersionError carries the details of a failed concurrency
// check. It matches ErrWrongExpectedVersion.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64 // the stream's version when the append was checked
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("store: wrong expected version for stream %q: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) hold.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }
