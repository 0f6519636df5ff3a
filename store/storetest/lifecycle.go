package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// testReopenData: after Close and reopen every record is there unchanged
// (ids and times included), Head is the same, versions and positions
// continue, expected versions are checked against the reopened state, and a
// retry of an append made before the reopen returns its original result.
func testReopenData(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	appendModel(t, s, &m, "reopen-1", newEvents(3, "before")...)
	appendModel(t, s, &m, "reopen-2", event.Event{Type: "zero-id", Data: []byte{}}, event.Event{Type: "zero-id"})
	if limit := h.Features.MaxEventSize; limit > 0 {
		big := sizedEvent(limit)
		appendModel(t, s, &m, "reopen-big", big)
	}
	retried := newEvents(2, "retried")
	original := mustAppend(t, s, "reopen-1", store.Exactly(3), retried...)
	m.add("reopen-1", retried, original)
	appendModel(t, s, &m, "reopen-2", newEvent("after"))

	before := readAll(t, s)
	checkRecords(t, "ReadAll before reopening", before, m.all(0, store.Filter{}))
	head := m.head()

	for round := 1; round <= 2; round++ {
		s = reopen(t, h, s)
		when := fmt.Sprintf("after reopen %d", round)
		wantHead(t, s, head, when)
		if d := sameRecords(readAll(t, s), before); d != "" {
			t.Fatalf("ReadAll %s: %s", when, d)
		}
		for _, stream := range []string{"reopen-1", "reopen-2"} {
			var want []event.Record
			for _, r := range before {
				if r.Stream == stream {
					want = append(want, r)
				}
			}
			if d := sameRecords(readStream(t, s, stream), want); d != "" {
				t.Fatalf("ReadStream(%q) %s: %s", stream, when, d)
			}
		}
	}

	// Expected versions are checked against what was stored before.
	for _, c := range []struct {
		exp    store.ExpectedVersion
		actual uint64
	}{{store.NoStream, 5}, {store.Exactly(4), 5}, {store.Exactly(6), 5}} {
		_, err := s.Append(testContext(t), "reopen-1", c.exp, newEvent("stale"))
		if d := wrongVersion(err, "reopen-1", c.exp, c.actual); d != "" {
			t.Errorf("Append(%v) after reopen: %s", c.exp, d)
		}
	}
	_, err := s.Append(testContext(t), "reopen-new", store.StreamExists, newEvent("nope"))
	if d := wrongVersion(err, "reopen-new", store.StreamExists, 0); d != "" {
		t.Errorf("Append(StreamExists) to a new stream after reopen: %s", d)
	}
	wantHead(t, s, head, "after failed appends")

	// An append made before the reopen, retried after it.
	retry(t, s, "reopen-1", store.Exactly(3), retried, original, "after reopen")

	// Versions and positions continue.
	res := mustAppend(t, s, "reopen-1", store.Exactly(5), newEvent("continued"))
	wantResult(t, "first append after reopen", res, store.AppendResult{Version: 6, FirstPosition: head + 1, LastPosition: head + 1})
	res = mustAppend(t, s, "reopen-new", store.NoStream, newEvent("new"))
	wantResult(t, "append to a new stream after reopen", res, store.AppendResult{Version: 1, FirstPosition: head + 2, LastPosition: head + 2})

	// A subscription replays the old history and goes live.
	sub := subscribe(t, s, store.SubscribeOptions{}, "Subscribe after reopen")
	if d := sameRecords(sub.expect(t, head), before); d != "" {
		t.Fatalf("Subscribe after reopen: %s", d)
	}
	sub.expect(t, head+2)
	mustAppend(t, s, "reopen-2", store.Exactly(3), newEvent("live"))
	sub.expect(t, head+3)
}

// testReopenEmpty: a store closed without appends reopens empty and starts
// at position 1.
func testReopenEmpty(t *testing.T, h Harness) {
	s := reopen(t, h, newStore(t, h))
	wantHead(t, s, 0, "of a reopened empty store")
	if recs := readAll(t, s); len(recs) != 0 {
		t.Fatalf("ReadAll of a reopened empty store: %d records", len(recs))
	}
	wantStreamLen(t, s, "any", 0, "in a reopened empty store")
	res := mustAppend(t, s, "first", store.NoStream, newEvent("first"))
	wantResult(t, "first append after reopening an empty store", res, store.AppendResult{Version: 1, FirstPosition: 1, LastPosition: 1})
	s = reopen(t, h, s)
	wantHead(t, s, 1, "after a second reopen")
}

// testClosedOperations: after Close every operation fails with ErrClosed,
// and Close again — also from two goroutines at once — neither panics nor
// hangs.
func testClosedOperations(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "closed", store.NoStream, newEvent("before"))
	if err := closeWithin(s, waitTimeout); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := testContext(t)
	if _, err := s.Append(ctx, "closed", store.Any, newEvent("after")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append after Close: %v, want store.ErrClosed", err)
	}
	if _, err := s.Append(ctx, "closed-new", store.NoStream, newEvent("after")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append to a new stream after Close: %v, want store.ErrClosed", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Head after Close: %v, want store.ErrClosed", err)
	}
	reads := []struct {
		name string
		seq  func() ([]event.Record, error)
	}{
		{"ReadAll", func() ([]event.Record, error) {
			return collect(t, "ReadAll after Close", s.ReadAll(ctx, store.ReadAllOptions{}))
		}},
		{"ReadStream", func() ([]event.Record, error) {
			return collect(t, "ReadStream after Close", s.ReadStream(ctx, "closed", store.ReadStreamOptions{}))
		}},
		{"Subscribe", func() ([]event.Record, error) {
			return collect(t, "Subscribe after Close", s.Subscribe(ctx, store.SubscribeOptions{}))
		}},
	}
	for _, r := range reads {
		recs, err := r.seq()
		if !errors.Is(err, store.ErrClosed) || len(recs) > 0 {
			t.Errorf("%s after Close: %d records, error %v; want store.ErrClosed and no records", r.name, len(recs), err)
		}
	}

	closeAgain := func(what string, s store.Store) {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s panicked: %v", what, p)
			}
		}()
		if err := closeWithin(s, waitTimeout); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s: %v, want nil or store.ErrClosed", what, err)
		}
	}
	closeAgain("second Close", s)

	s2 := newStore(t, h)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { closeAgain("concurrent Close", s2) })
	}
	wg.Wait()
	if _, err := s2.Head(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Head after concurrent Close: %v, want store.ErrClosed", err)
	}
}

// testCloseDuringAppends: Close while appends are in flight returns, every
// append either succeeds or fails with ErrClosed, and (with Reopen) every
// acknowledged append is there after reopening, densely.
func testCloseDuringAppends(t *testing.T, h Harness) {
	s := newStore(t, h)
	ctx := testContext(t)
	const writers = 8
	enough := make(chan struct{}) // closed once some appends were acknowledged
	var acked atomic.Int64
	var mu sync.Mutex
	ackedIDs := map[event.ID]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				e := newEvent("closing")
				_, err := s.Append(ctx, fmt.Sprintf("closing-%d", w), store.Any, e)
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("writer %d: Append while closing: %v, want success or store.ErrClosed", w, err)
					return
				}
				mu.Lock()
				ackedIDs[e.ID] = true
				mu.Unlock()
				if acked.Add(1) == 100 {
					close(enough)
				}
			}
		})
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-enough:
	case <-stopped:
		t.Fatalf("every writer stopped before 100 appends were acknowledged")
	case <-time.After(waitTimeout):
		t.Fatalf("fewer than 100 appends acknowledged within %v", waitTimeout)
	}
	if err := closeWithin(s, waitTimeout); err != nil {
		t.Fatalf("Close during appends: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(waitTimeout):
		t.Fatalf("appends still running %v after Close", waitTimeout)
	}
	if t.Failed() || !h.Features.Reopen {
		return
	}

	s2 := h.Reopen(t, s)
	t.Cleanup(func() { closeAtCleanup(t, s2) })
	all := readAll(t, s2)
	for i, r := range all {
		if r.Position != uint64(i+1) {
			t.Fatalf("after reopening: record %d at position %d, want %d", i, r.Position, i+1)
		}
		delete(ackedIDs, r.ID)
	}
	wantHead(t, s2, uint64(len(all)), "after reopening")
	for id := range ackedIDs {
		t.Fatalf("acknowledged event %v is missing after Close and reopen (%d of %d acknowledged missing)", id, len(ackedIDs), acked.Load())
	}
}
