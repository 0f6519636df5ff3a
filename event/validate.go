package event

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest stream name or event type, in bytes.
const MaxNameLen = 255

// ErrInvalid is wrapped by every validation error, so callers can tell bad
// input from a failing store with errors.Is.
var ErrInvalid = errors.New("event: invalid")

// ValidationError names the field that failed and why.
type ValidationError struct {
	Field  string // "stream", "type"
	Value  string
	Reason string
}

func (e *ValidationError) Error() string {
	v := e.Value
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return fmt.Sprintf("event: invalid %s %q: %s", e.Field, v, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// ValidateStream checks a stream name.
func ValidateStream(name string) error { return validateName("stream", name) }

// ValidateType checks an event type name.
func ValidateType(name string) error { return validateName("type", name) }

func validateName(field, s string) error {
	switch {
	case s == "":
		return &ValidationError{Field: field, Value: s, Reason: "must not be empty"}
	case len(s) > MaxNameLen:
		return &ValidationError{Field: field, Value: s, Reason: fmt.Sprintf("is %d bytes, at most %d allowed", len(s), MaxNameLen)}
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii { // the common case: printable ASCII needs no rune decoding
		return nil
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return &ValidationError{Field: field, Value: s, Reason: fmt.Sprintf("is not valid UTF-8 at byte %d", i)}
		}
		if unicode.IsControl(r) {
			return &ValidationError{Field: field, Value: s, Reason: fmt.Sprintf("contains control character %U at byte %d", r, i)}
		}
		i += size
	}
	return nil
}

// Validate checks the parts of e the log relies on.
func (e *Event) Validate() error {
	return ValidateType(e.Type)
}
