package pgstore

import (
	"errors"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// TestIDsUniqueInStream: pgstore keeps event ids unique within a stream. An
// id the stream already holds is refused as invalid unless the append is a
// retry, and a "retry" whose ids were written by two appends has no single
// original result to return.
func TestIDsUniqueInStream(t *testing.T) {
	url := testURL(t)
	s := openStore(t, url, newSchema(t, url))
	ctx := t.Context()
	e := testEvents(3, "ids")
	mustAppend := func(stream string, exp store.ExpectedVersion, evs ...event.Event) store.AppendResult {
		t.Helper()
		res, err := s.Append(ctx, stream, exp, evs...)
		if err != nil {
			t.Fatalf("Append(%q, %v): %v", stream, exp, err)
		}
		return res
	}
	mustAppend("ids", store.NoStream, e[0])
	mustAppend("other", store.NoStream, testEvents(1, "between")...)
	mustAppend("ids", store.Exactly(1), e[1])

	// e[0] again, at the end, with the right expected version: not a retry.
	for _, exp := range []store.ExpectedVersion{store.Any, store.Exactly(2), store.StreamExists} {
		if _, err := s.Append(ctx, "ids", exp, e[0]); !errors.Is(err, event.ErrInvalid) {
			t.Errorf("Append(%v) of an id already in the stream: %v, want event.ErrInvalid", exp, err)
		}
	}
	// The same id in another stream is fine.
	mustAppend("ids-2", store.NoStream, e[0])

	// Versions 1..2 hold e[0], e[1], but from two appends with another
	// stream's event between them.
	if _, err := s.Append(ctx, "ids", store.NoStream, e[0], e[1]); !errors.Is(err, event.ErrInvalid) {
		t.Errorf("retry of two appends as one: %v, want event.ErrInvalid", err)
	}
	if head, err := s.Head(ctx); err != nil || head != 4 {
		t.Fatalf("Head = %d, %v; want 4", head, err)
	}
	// A real retry still works.
	res := mustAppend("ids", store.Exactly(2), e[2])
	if again := mustAppend("ids", store.Exactly(2), e[2]); again != res {
		t.Fatalf("retry: %+v, want %+v", again, res)
	}
}
