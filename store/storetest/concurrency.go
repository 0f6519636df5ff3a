package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// testOptimisticRetries: writers racing on one stream with Exactly(v) and a
// retry loop (the aggregate repository's pattern) end with every event in
// the stream exactly once, at versions 1..N without gaps.
func testOptimisticRetries(t *testing.T, h Harness) {
	s := newStore(t, h)
	ctx := testContext(t)
	const workers = 8
	perWorker := scale(50)
	const stream = "contended"

	var (
		mu        sync.Mutex
		appended  = map[event.ID]bool{}
		versions  = map[uint64]event.ID{}
		conflicts atomic.Int64
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			var known uint64 // what this writer believes the stream's version is
			for i := range perWorker {
				e := newEvent(fmt.Sprintf("contended.%d", w))
				for attempt := 0; ; attempt++ {
					if attempt > 10*workers*perWorker {
						t.Errorf("writer %d: event %d still conflicting after %d attempts", w, i, attempt)
						return
					}
					res, err := s.Append(ctx, stream, store.Exactly(known), e)
					if err == nil {
						if res.Version != known+1 {
							t.Errorf("writer %d: Append(Exactly(%d)) returned version %d", w, known, res.Version)
							return
						}
						mu.Lock()
						appended[e.ID] = true
						if other, dup := versions[res.Version]; dup {
							t.Errorf("version %d acknowledged to two appends (ids %v and %v)", res.Version, other, e.ID)
						}
						versions[res.Version] = e.ID
						mu.Unlock()
						known = res.Version
						break
					}
					var wev *store.WrongExpectedVersionError
					if !errors.As(err, &wev) {
						t.Errorf("writer %d: Append(Exactly(%d)): %v, want success or a *store.WrongExpectedVersionError", w, known, err)
						return
					}
					conflicts.Add(1)
					if wev.Actual <= known {
						t.Errorf("writer %d: Exactly(%d) failed with Actual %d: a stream's version never goes back", w, known, wev.Actual)
						return
					}
					// Learn the version from the error or by reading, as
					// callers do.
					if attempt%2 == 0 {
						known = wev.Actual
					} else if known, err = streamVersion(ctx, s, stream); err != nil {
						t.Errorf("writer %d: reading the stream's version: %v", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d conflicts retried", conflicts.Load())

	recs := readStream(t, s, stream)
	if len(recs) != workers*perWorker {
		t.Fatalf("stream has %d events, want %d", len(recs), workers*perWorker)
	}
	seen := map[event.ID]bool{}
	for i, r := range recs {
		switch {
		case r.Version != uint64(i+1):
			t.Fatalf("record %d has version %d, want %d", i, r.Version, i+1)
		case i > 0 && r.Position <= recs[i-1].Position:
			t.Fatalf("version %d at position %d, not after version %d at %d", r.Version, r.Position, r.Version-1, recs[i-1].Position)
		case seen[r.ID]:
			t.Fatalf("event %v stored twice", r.ID)
		case !appended[r.ID]:
			t.Fatalf("version %d holds event %v, which no acknowledged append wrote", r.Version, r.ID)
		case versions[r.Version] != r.ID:
			t.Fatalf("version %d holds %v, its append was acknowledged for %v", r.Version, r.ID, versions[r.Version])
		}
		seen[r.ID] = true
	}
}

// testLargeAppend: one append of many events is one atomic append with dense
// positions, and reads back exactly.
func testLargeAppend(t *testing.T, h Harness) {
	s := newStore(t, h)
	n := scale(10000)
	var m model
	noise := newEvent("noise")
	m.add("large-noise", []event.Event{noise}, mustAppend(t, s, "large-noise", store.NoStream, noise))

	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: event.NewID(), Type: "bulk", Data: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	res := mustAppend(t, s, "large", store.NoStream, evs...)
	wantResult(t, fmt.Sprintf("Append of %d events", n), res,
		store.AppendResult{Version: uint64(n), FirstPosition: 2, LastPosition: uint64(n) + 1})
	m.add("large", evs, res)

	checkRecords(t, `ReadStream("large")`, readStream(t, s, "large"), m.stream("large"))
	checkRecords(t, "ReadAll", readAll(t, s), m.all(0, store.Filter{}))
	last := mustCollect(t, "ReadStream backwards, limit 1", s.ReadStream(testContext(t), "large", store.ReadStreamOptions{Backwards: true, Limit: 1}))
	checkRecords(t, "ReadStream backwards, limit 1", last, m.all(uint64(n), store.Filter{}))
	wantHead(t, s, uint64(n)+1, "after a large append")
}

// testManyStreams: many streams appended concurrently each read back
// exactly, and the log holds them all, densely.
func testManyStreams(t *testing.T, h Harness) {
	s := newStore(t, h)
	ctx := testContext(t)
	n := scale(2000)
	name := func(i int) string { return fmt.Sprintf("many-%d", i) }

	type appendedStream struct {
		evs []event.Event
		res store.AppendResult
	}
	results := make([]appendedStream, n)
	todo := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range todo {
				evs := newEvents(i%3+1, fmt.Sprintf("many.%d", i%5))
				res, err := s.Append(ctx, name(i), store.NoStream, evs...)
				if err != nil {
					t.Errorf("Append(%q): %v", name(i), err)
					continue
				}
				if res.Version != uint64(len(evs)) {
					t.Errorf("Append of %d events to new stream %q returned version %d", len(evs), name(i), res.Version)
				}
				results[i] = appendedStream{evs, res}
			}
		})
	}
	for i := range n {
		todo <- i
	}
	close(todo)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var m model
	for i, r := range results {
		m.add(name(i), r.evs, r.res)
	}
	for i, r := range m.recs {
		if r.Stream == "" {
			t.Fatalf("no acknowledged append covers position %d: positions are not dense", i+1)
		}
	}
	wantHead(t, s, m.head(), "after appending to many streams")
	for i, r := range results {
		var want []event.Record
		for j := range r.evs {
			want = append(want, m.recs[r.res.FirstPosition-1+uint64(j)])
		}
		checkRecords(t, fmt.Sprintf("ReadStream(%q)", name(i)), readStream(t, s, name(i)), want)
	}
	checkRecords(t, "ReadAll", readAll(t, s), m.all(0, store.Filter{}))
	for _, f := range []store.Filter{{StreamPrefix: "many-1"}, {StreamPrefix: "many-19"}, {Types: []string{"many.3"}}} {
		what := fmt.Sprintf("ReadAll(Filter %+v)", f)
		checkRecords(t, what, mustCollect(t, what, s.ReadAll(ctx, store.ReadAllOptions{Filter: f})), m.all(0, f))
	}
}
