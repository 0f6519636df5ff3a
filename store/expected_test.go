package store

import (
	"errors"
	"testing"
)

func TestExpectedVersionCheck(t *testing.T) {
	cases := []struct {
		e       ExpectedVersion
		current uint64
		want    bool
	}{
		{Any, 0, true}, {Any, 7, true},
		{NoStream, 0, true}, {NoStream, 1, false},
		{StreamExists, 0, false}, {StreamExists, 3, true},
		{Exactly(3), 3, true}, {Exactly(3), 2, false}, {Exactly(3), 4, false},
		{Exactly(0), 0, true}, {Exactly(0), 1, false},
	}
	for _, tc := range cases {
		if got := tc.e.Check(tc.current); got != tc.want {
			t.Errorf("%s.Check(%d) = %v, want %v", tc.e, tc.current, got, tc.want)
		}
	}
	var zero ExpectedVersion
	if !zero.IsAny() {
		t.Error("the zero ExpectedVersion is not Any")
	}
}

func TestParseExpectedVersion(t *testing.T) {
	for _, e := range []ExpectedVersion{Any, NoStream, StreamExists, Exactly(1), Exactly(12345)} {
		got, err := ParseExpectedVersion(e.String())
		if err != nil || got != e {
			t.Errorf("ParseExpectedVersion(%q) = %v, %v", e.String(), got, err)
		}
	}
	for _, s := range []string{"-1", "soon", "1.5"} {
		if _, err := ParseExpectedVersion(s); err == nil {
			t.Errorf("ParseExpectedVersion(%q) succeeded", s)
		}
	}
}

func TestWrongExpectedVersionError(t *testing.T) {
	var err error = &WrongExpectedVersionError{Stream: "s", Expected: Exactly(2), Actual: 5}
	if !errors.Is(err, ErrWrongExpectedVersion) {
		t.Fatal("does not match the sentinel")
	}
	if got := err.Error(); got != `store: wrong expected version for stream "s": expected 2, stream is at version 5` {
		t.Fatalf("message = %q", got)
	}
}
