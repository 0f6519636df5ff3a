package storetest

import (
	"fmt"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// retry re-appends evs as a client would after a lost acknowledgement and
// checks that the store returns the original result and writes nothing.
func retry(t *testing.T, s store.Store, stream string, exp store.ExpectedVersion, evs []event.Event, original store.AppendResult, when string) {
	t.Helper()
	head := mustHead(t, s)
	before := readStream(t, s, stream)
	res, err := s.Append(testContext(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("retry with %v %s: %v, want the original result %+v", exp, when, err, original)
	}
	wantResult(t, fmt.Sprintf("retry with %v %s", exp, when), res, original)
	wantHead(t, s, head, "after a retry "+when)
	if d := sameRecords(readStream(t, s, stream), before); d != "" {
		t.Fatalf("stream %q changed after a retry %s: %s", stream, when, d)
	}
}

// testIdempotentExactly: a retry with Exactly(v) returns the original result,
// right away and after more events were appended to the stream and the log.
func testIdempotentExactly(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "idem", store.NoStream, newEvent("first"))
	evs := newEvents(2, "retried")
	original := mustAppend(t, s, "idem", store.Exactly(1), evs...)
	wantResult(t, "the append to retry", original, store.AppendResult{Version: 3, FirstPosition: 2, LastPosition: 3})

	retry(t, s, "idem", store.Exactly(1), evs, original, "right after the append")
	mustAppend(t, s, "idem", store.Exactly(3), newEvents(2, "later")...)
	mustAppend(t, s, "idem-other", store.Any, newEvent("elsewhere"))
	retry(t, s, "idem", store.Exactly(1), evs, original, "after later appends to the stream")

	// A single-event append, retried too.
	one := newEvent("single")
	res := mustAppend(t, s, "idem", store.Exactly(5), one)
	mustAppend(t, s, "idem", store.Any, newEvent("later"))
	retry(t, s, "idem", store.Exactly(5), []event.Event{one}, res, "of a single event")
}

// testIdempotentNoStream: a retry of a stream's first append with NoStream
// returns the original result.
func testIdempotentNoStream(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "idem-noise", store.Any, newEvent("noise"))
	evs := newEvents(3, "created")
	original := mustAppend(t, s, "idem", store.NoStream, evs...)
	retry(t, s, "idem", store.NoStream, evs, original, "right after the append")
	mustAppend(t, s, "idem", store.Exactly(3), newEvent("later"))
	retry(t, s, "idem", store.NoStream, evs, original, "after a later append")
	retry(t, s, "idem", store.Exactly(0), evs, original, "spelled Exactly(0)")
}

// testIdempotentAny: with Any, a retry returns the original result while its
// events are still the stream's last.
func testIdempotentAny(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "idem", store.Any, newEvent("first"))
	evs := newEvents(2, "any")
	original := mustAppend(t, s, "idem", store.Any, evs...)
	mustAppend(t, s, "idem-other", store.Any, newEvent("elsewhere"))
	retry(t, s, "idem", store.Any, evs, original, "while its events are the stream's last")
	// Unspecified: a retry with Any after later appends to the same stream,
	// and retries with StreamExists.
}

// testIdempotentDifferentPlace: ids already in the stream but at another
// place than the expected version names are not a retry: the append fails
// its version check instead of being silently taken as a duplicate.
func testIdempotentDifferentPlace(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "idem", store.NoStream, newEvent("first"))
	evs := newEvents(2, "placed")
	mustAppend(t, s, "idem", store.Exactly(1), evs...) // versions 2 and 3
	mustAppend(t, s, "idem", store.Exactly(3), newEvent("later"))
	head := mustHead(t, s)

	extra := append(append([]event.Event(nil), evs...), newEvent("extra"))
	cases := []struct {
		name string
		exp  store.ExpectedVersion
		evs  []event.Event
	}{
		{"Exactly one version later", store.Exactly(2), evs},
		{"NoStream", store.NoStream, evs},
		{"same place, one more event", store.Exactly(1), extra},
		{"second event at the first's place", store.Exactly(1), evs[1:]},
		{"same place, reordered", store.Exactly(1), []event.Event{evs[1], evs[0]}},
	}
	for _, c := range cases {
		_, err := s.Append(testContext(t), "idem", c.exp, c.evs...)
		if d := wrongVersion(err, "idem", c.exp, 4); d != "" {
			t.Errorf("%s: Append(%v) of ids appended at versions 2..3: %s", c.name, c.exp, d)
		}
	}
	wantHead(t, s, head, "after appends of known ids at other places")
	wantStreamLen(t, s, "idem", 4, "after appends of known ids at other places")
}
