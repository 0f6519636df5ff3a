package store

import (
	"fmt"
	"strconv"
	"strings"
)

type expectedKind uint8

const (
	kindAny expectedKind = iota
	kindNoStream
	kindStreamExists
	kindExactly
)

// ExpectedVersion is the optimistic-concurrency condition of an append. The
// zero value is Any.
type ExpectedVersion struct {
	kind    expectedKind
	version uint64
}

var (
	// Any appends whatever the stream's version.
	Any = ExpectedVersion{kind: kindAny}
	// NoStream appends only if the stream has no events yet.
	NoStream = ExpectedVersion{kind: kindNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedVersion{kind: kindStreamExists}
)

// Exactly appends only if the stream's version is v. Exactly(0) is NoStream.
func Exactly(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: kindExactly, version: v}
}

// Check reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Check(current uint64) bool {
	switch e.kind {
	case kindNoStream:
		return current == 0
	case kindStreamExists:
		return current > 0
	case kindExactly:
		return current == e.version
	default:
		return true
	}
}

// Version returns the exact version e demands: v for Exactly(v), 0 for
// NoStream. ok is false for Any and StreamExists, which name no version.
func (e ExpectedVersion) Version() (v uint64, ok bool) {
	switch e.kind {
	case kindNoStream:
		return 0, true
	case kindExactly:
		return e.version, true
	}
	return 0, false
}

// IsAny reports whether e is Any.
func (e ExpectedVersion) IsAny() bool { return e.kind == kindAny }

func (e ExpectedVersion) String() string {
	switch e.kind {
	case kindNoStream:
		return "no-stream"
	case kindStreamExists:
		return "stream-exists"
	case kindExactly:
		return strconv.FormatUint(e.version, 10)
	default:
		return "any"
	}
}

// ParseExpectedVersion parses the forms String produces: "any", "no-stream",
// "stream-exists" or a version number.
func ParseExpectedVersion(s string) (ExpectedVersion, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "any":
		return Any, nil
	case "no-stream", "nostream":
		return NoStream, nil
	case "stream-exists", "exists":
		return StreamExists, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return Any, fmt.Errorf("store: expected version %q: want any, no-stream, stream-exists or a number", s)
	}
	return Exactly(v), nil
}
