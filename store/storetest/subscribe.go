package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// subscription runs one Subscribe on its own goroutine and hands what it
// yields to the test over an unbuffered channel, so the test can wait with a
// timeout. A subscription the test does not read from is a stalled consumer:
// its loop body blocks.
type subscription struct {
	name   string
	items  chan subItem // closed when the iterator returns
	cancel context.CancelFunc
	next   uint64 // position the test expects next (unfiltered subscriptions)
}

type subItem struct {
	r   event.Record
	err error
}

func subscribe(t *testing.T, s store.Store, opts store.SubscribeOptions, name string) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	sub := &subscription{name: name, items: make(chan subItem), cancel: cancel, next: opts.After + 1}
	quit := make(chan struct{})
	t.Cleanup(func() { cancel(); close(quit) })
	go func() {
		defer close(sub.items)
		for r, err := range s.Subscribe(ctx, opts) {
			select {
			case sub.items <- subItem{r, err}:
			case <-quit:
				return
			}
		}
	}()
	return sub
}

// record waits for the next record and fails the test on an error, the end
// of the subscription or a timeout.
func (sub *subscription) record(t *testing.T) event.Record {
	t.Helper()
	select {
	case it, ok := <-sub.items:
		switch {
		case !ok:
			t.Fatalf("%s: subscription ended without an error", sub.name)
		case it.err != nil:
			t.Fatalf("%s: error %v", sub.name, it.err)
		}
		return it.r
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no record within %v", sub.name, waitTimeout)
	}
	panic("unreachable")
}

// expect waits for the records at positions next..to, in order.
func (sub *subscription) expect(t *testing.T, to uint64) []event.Record {
	t.Helper()
	var recs []event.Record
	for ; sub.next <= to; sub.next++ {
		r := sub.record(t)
		if r.Position != sub.next {
			t.Fatalf("%s: record at position %d, want %d (%s)", sub.name, r.Position, sub.next, gapOrDup(r.Position, sub.next))
		}
		recs = append(recs, r)
	}
	return recs
}

func gapOrDup(got, want uint64) string {
	if got > want {
		return "a gap"
	}
	return "a duplicate or reordering"
}

// ended reports whether err is how a subscription may end when the store is
// closed under it.
func endedByClose(err error) bool {
	return errors.Is(err, store.ErrClosed) || errors.Is(err, context.Canceled)
}

// expectEnd waits for the subscription to yield an error that ok accepts and
// then to end. Records before the error are allowed only if moreRecords is
// set; they must continue in order.
func (sub *subscription) expectEnd(t *testing.T, ok func(error) bool, want string, moreRecords bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case it, open := <-sub.items:
			switch {
			case !open:
				t.Fatalf("%s: subscription ended without an error, want %s", sub.name, want)
			case it.err == nil && !moreRecords:
				t.Fatalf("%s: record at position %d, want the subscription to end with %s", sub.name, it.r.Position, want)
			case it.err == nil:
				if it.r.Position != sub.next {
					t.Fatalf("%s: record at position %d, want %d (%s)", sub.name, it.r.Position, sub.next, gapOrDup(it.r.Position, sub.next))
				}
				sub.next++
				continue
			case !ok(it.err):
				t.Fatalf("%s: ended with error %q, want %s", sub.name, it.err, want)
			}
			// The error must be the last thing yielded.
			select {
			case it, open := <-sub.items:
				if open {
					t.Fatalf("%s: yielded again (position %d, error %v) after error %v", sub.name, it.r.Position, it.err, it.err)
				}
			case <-deadline:
				t.Fatalf("%s: iterator did not return within %v after yielding its error", sub.name, waitTimeout)
			}
			return
		case <-deadline:
			t.Fatalf("%s: did not end within %v, want %s", sub.name, waitTimeout, want)
		}
	}
}

// appendModel appends and records the append in m.
func appendModel(t *testing.T, s store.Store, m *model, stream string, evs ...event.Event) {
	t.Helper()
	m.add(stream, evs, mustAppend(t, s, stream, store.Any, evs...))
}

// testSubscribeHistoryThenLive: a subscription from 0 yields the history,
// then each append as it is acknowledged, and ends with ctx.Err() when its
// context is cancelled.
func testSubscribeHistoryThenLive(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	appendModel(t, s, &m, "sub-1", newEvents(3, "history")...)
	appendModel(t, s, &m, "sub-2", newEvents(2, "history")...)

	sub := subscribe(t, s, store.SubscribeOptions{}, "Subscribe(After 0)")
	checkRecords(t, "history", sub.expect(t, 5), m.all(0, store.Filter{}))

	appendModel(t, s, &m, "sub-1", newEvents(2, "live")...)
	appendModel(t, s, &m, "sub-3", newEvent("live"))
	checkRecords(t, "live, two appends", sub.expect(t, 8), m.all(5, store.Filter{}))
	for i := range 3 {
		appendModel(t, s, &m, "sub-2", newEvent("live"))
		checkRecords(t, fmt.Sprintf("live append %d", i), sub.expect(t, m.head()), m.all(m.head()-1, store.Filter{}))
	}

	sub.cancel()
	sub.expectEnd(t, func(err error) bool { return errors.Is(err, context.Canceled) }, "context.Canceled", false)
}

// testSubscribeFromMiddle: After skips everything at or before it; After at
// the head waits for the next append.
func testSubscribeFromMiddle(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	for i := range 10 {
		appendModel(t, s, &m, fmt.Sprintf("mid-%d", i%3), newEvent("history"))
	}
	mid := subscribe(t, s, store.SubscribeOptions{After: 4}, "Subscribe(After 4)")
	atHead := subscribe(t, s, store.SubscribeOptions{After: 10}, "Subscribe(After 10)")
	checkRecords(t, "Subscribe(After 4) history", mid.expect(t, 10), m.all(4, store.Filter{}))

	appendModel(t, s, &m, "mid-1", newEvents(2, "live")...)
	checkRecords(t, "Subscribe(After 4) live", mid.expect(t, 12), m.all(10, store.Filter{}))
	checkRecords(t, "Subscribe(After 10) live", atHead.expect(t, 12), m.all(10, store.Filter{}))
}

// testSubscribeEmptyStore: a subscription to an empty store waits for the
// first append.
func testSubscribeEmptyStore(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	sub := subscribe(t, s, store.SubscribeOptions{}, "Subscribe(After 0) of an empty store")
	appendModel(t, s, &m, "first", newEvent("first"))
	checkRecords(t, "first live record", sub.expect(t, 1), m.all(0, store.Filter{}))
	appendModel(t, s, &m, "second", newEvents(3, "second")...)
	checkRecords(t, "second live append", sub.expect(t, 4), m.all(1, store.Filter{}))
}

// testSubscribeFilter: a filtered subscription yields exactly the matching
// records, from history and live, in order.
func testSubscribeFilter(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	script := []struct{ stream, typ string }{
		{"acct-1", "opened"}, {"acct-2", "opened"}, {"acct-1", "deposited"}, {"user-1", "deposited"},
		{"acct", "deposited"}, {"acct-2", "deposited"}, {"acct-1", "closed"}, {"xacct-1", "deposited"},
	}
	for _, st := range script {
		appendModel(t, s, &m, st.stream, newEvent(st.typ))
	}
	filters := []store.SubscribeOptions{
		{Filter: store.Filter{StreamPrefix: "acct-", Types: []string{"deposited", "closed"}}},
		{Filter: store.Filter{Types: []string{"deposited"}}, After: 4},
		{Filter: store.Filter{StreamPrefix: "acct"}},
	}
	subs := make([]*subscription, len(filters))
	for i, o := range filters {
		subs[i] = subscribe(t, s, o, fmt.Sprintf("Subscribe(%+v)", o))
	}
	for _, st := range script { // live: the same again
		appendModel(t, s, &m, st.stream, newEvent(st.typ))
	}
	// A sentinel every filter matches ends the comparison.
	appendModel(t, s, &m, "acct-9", newEvent("deposited"))

	for i, o := range filters {
		want := m.all(o.After, o.Filter)
		var got []event.Record
		for len(got) < len(want) {
			got = append(got, subs[i].record(t))
		}
		checkRecords(t, subs[i].name, got, want)
	}
}

// testSubscribeCancel: cancelling the context ends a subscription with
// ctx.Err() — while it waits for appends, while it yields history, and when
// the context is done before it starts.
func testSubscribeCancel(t *testing.T, h Harness) {
	s := newStore(t, h)
	for i := range 10 {
		mustAppend(t, s, "cancel", store.Any, newEvents(20, fmt.Sprintf("cancel.%d", i))...)
	}
	isCanceled := func(err error) bool { return errors.Is(err, context.Canceled) }

	live := subscribe(t, s, store.SubscribeOptions{After: 195}, "live subscription")
	live.expect(t, 200)
	live.cancel()
	live.expectEnd(t, isCanceled, "context.Canceled", false)

	history := subscribe(t, s, store.SubscribeOptions{}, "subscription reading history")
	history.expect(t, 1)
	history.cancel()
	history.expectEnd(t, isCanceled, "context.Canceled", true)

	done, cancel := context.WithCancel(testContext(t))
	cancel()
	recs, err := collect(t, "Subscribe with a cancelled context", s.Subscribe(done, store.SubscribeOptions{}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context: ended with %v after %d records, want context.Canceled", err, len(recs))
	}
	expired, cancel := context.WithDeadline(testContext(t), time.Now().Add(-time.Second))
	defer cancel()
	recs, err = collect(t, "Subscribe with an expired deadline", s.Subscribe(expired, store.SubscribeOptions{After: 100}))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe with an expired deadline: ended with %v after %d records, want context.DeadlineExceeded", err, len(recs))
	}
	for i, r := range recs {
		if r.Position != uint64(101+i) {
			t.Fatalf("Subscribe(After 100) with an expired deadline: record %d at position %d, want %d", i, r.Position, 101+i)
		}
	}
}

// testSubscribeAppendInsideLoop: a subscriber may append from its loop body
// and then sees its own append: ping, pong, ping, ...
func testSubscribeAppendInsideLoop(t *testing.T, h Harness) {
	s := newStore(t, h)
	ctx := testContext(t)
	const rounds = 20
	mustAppend(t, s, "pingpong", store.NoStream, event.Event{Type: "ping"})
	within(t, "Subscribe with Append in the loop body", func() {
		next := uint64(1)
		for r, err := range s.Subscribe(ctx, store.SubscribeOptions{}) {
			if err != nil {
				t.Errorf("Subscribe: %v", err)
				return
			}
			if r.Position != next || r.Version != next {
				t.Errorf("Subscribe: position %d, version %d, want %d", r.Position, r.Version, next)
				return
			}
			if next == 2*rounds {
				return
			}
			reply := map[string]string{"ping": "pong", "pong": "ping"}[r.Type]
			if _, err := s.Append(ctx, "pingpong", store.Exactly(r.Version), event.Event{Type: reply}); err != nil {
				t.Errorf("Append(%s) inside Subscribe loop: %v", reply, err)
				return
			}
			next++
		}
		t.Errorf("Subscribe ended before position %d", 2*rounds)
	})
}

// testSubscribeClose: Close ends every active subscription with ErrClosed —
// one waiting for appends, one whose consumer is stalled in its loop body,
// one whose filter matched nothing yet — and does not wait for consumers.
func testSubscribeClose(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "closing", store.NoStream, newEvents(3, "before")...)
	live := subscribe(t, s, store.SubscribeOptions{}, "live subscription")
	live.expect(t, 3)
	stalled := subscribe(t, s, store.SubscribeOptions{}, "stalled subscription")
	filtered := subscribe(t, s, store.SubscribeOptions{Filter: store.Filter{Types: []string{"never"}}}, "filtered subscription")

	if err := closeWithin(s, waitTimeout); err != nil {
		t.Fatalf("Close with active subscriptions: %v", err)
	}
	const want = "an error matching store.ErrClosed or context.Canceled"
	live.expectEnd(t, endedByClose, want, false)
	filtered.expectEnd(t, endedByClose, want, false)
	stalled.expectEnd(t, endedByClose, want, true)
}

// testSubscribeHandOff is the hand-off under load: writers append while
// subscribers start at different moments, from 0, from the middle of the log
// and from its head at the time; one subscriber stalls until the writers are
// done. Each must see exactly the positions after its start, in order,
// without gap or duplicate, with the ids ReadAll reports.
//
// The writer whose append crosses a milestone waits until that milestone's
// subscribers have been started, so that however fast the store, they start
// while the other writers are still appending. A last append after the
// writers (the sentinels) turn a subscriber that lost records at the tail
// into one that sees a gap, instead of one that waits forever.
func testSubscribeHandOff(t *testing.T, h Harness) {
	s := newStore(t, h)
	ctx := testContext(t)
	const writers = 4
	perWriter := scale(500)
	total := uint64(writers * perWriter)
	final := total + 1 // the first sentinel's position

	// Subscribers start when the writers have appended these many events.
	milestones := []uint64{total / 10, total / 4, total / 2, 3 * total / 4, total}
	reached := make([]chan struct{}, len(milestones))
	started := make([]chan struct{}, len(milestones))
	for i := range milestones {
		reached[i], started[i] = make(chan struct{}), make(chan struct{})
	}
	var appended atomic.Uint64
	failed := make(chan struct{})
	var failOnce sync.Once
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		failOnce.Do(func() { close(failed) })
	}

	type subscriber struct {
		name  string
		after uint64
		ids   []event.ID
		err   error
		next  atomic.Uint64 // the position awaited, 0 when done: for a timeout message
	}
	var subs []*subscriber
	var swg sync.WaitGroup
	start := func(name string, after uint64, stall <-chan struct{}) {
		sub := &subscriber{name: name, after: after}
		sub.next.Store(after + 1)
		subs = append(subs, sub)
		swg.Go(func() {
			defer sub.next.Store(0)
			next := after + 1
			for r, err := range s.Subscribe(ctx, store.SubscribeOptions{After: after}) {
				if err != nil {
					sub.err = fmt.Errorf("ended with error %v while waiting for position %d", err, next)
					return
				}
				if r.Position != next {
					sub.err = fmt.Errorf("record at position %d, want %d (%s)", r.Position, next, gapOrDup(r.Position, next))
					return
				}
				sub.ids = append(sub.ids, r.ID)
				if stall != nil && next == after+1 {
					select {
					case <-stall:
					case <-ctx.Done():
					}
				}
				if next == final {
					return
				}
				next++
				sub.next.Store(next)
			}
			sub.err = fmt.Errorf("ended without an error while waiting for position %d", next)
		})
	}

	writersDone := make(chan struct{})
	start("started first, stalled until the writers are done", 0, writersDone)
	start("started first", 0, nil)

	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Go(func() {
			for i, left := 0, perWriter; left > 0; i++ {
				n := min(i%4+1, left)
				stream := fmt.Sprintf("handoff-%d-%d", w, i%7)
				res, err := s.Append(ctx, stream, store.Any, newEvents(n, "handoff")...)
				if err != nil {
					fail("writer %d: Append(%q): %v", w, stream, err)
					return
				}
				if res.LastPosition-res.FirstPosition+1 != uint64(n) {
					fail("writer %d: Append of %d events returned positions %d..%d", w, n, res.FirstPosition, res.LastPosition)
					return
				}
				if head, err := s.Head(ctx); err != nil || head < res.LastPosition {
					fail("writer %d: Head = %d, %v right after an append was acknowledged at position %d", w, head, err, res.LastPosition)
					return
				}
				left -= n
				now := appended.Add(uint64(n))
				crossed := -1
				for j, m := range milestones {
					if now-uint64(n) < m && m <= now {
						close(reached[j])
						crossed = j
					}
				}
				if crossed >= 0 {
					select {
					case <-started[crossed]:
					case <-failed:
						return
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}

	for i, m := range milestones {
		select {
		case <-reached[i]:
		case <-failed:
			t.FailNow()
		case <-time.After(waitTimeout):
			t.Fatalf("writers did not reach %d appended events within %v (at %d)", m, waitTimeout, appended.Load())
		}
		head := mustHead(t, s)
		start(fmt.Sprintf("started at %d appended, from 0", m), 0, nil)
		start(fmt.Sprintf("started at %d appended, from %d (middle)", m, head/2), head/2, nil)
		start(fmt.Sprintf("started at %d appended, from its head %d", m, head), head, nil)
		close(started[i])
	}
	wwg.Wait()
	close(writersDone)
	if t.Failed() {
		t.FailNow()
	}
	// Subscribers stop at the first sentinel; the second makes one that
	// lost the first see a gap.
	for i := range uint64(2) {
		res := mustAppend(t, s, "handoff-sentinel", store.Exactly(i), newEvent("sentinel"))
		if res.LastPosition != final+i {
			t.Fatalf("sentinel %d appended at position %d, want %d", i, res.LastPosition, final+i)
		}
	}

	subsDone := make(chan struct{})
	go func() { swg.Wait(); close(subsDone) }()
	select {
	case <-subsDone:
	case <-time.After(waitTimeout):
		for _, sub := range subs {
			if n := sub.next.Load(); n != 0 {
				t.Errorf("subscriber %q (After %d) still waiting for position %d of %d", sub.name, sub.after, n, final)
			}
		}
		t.FailNow()
	}

	all := readAll(t, s)
	if uint64(len(all)) != final+1 {
		t.Fatalf("ReadAll after the writers: %d records, want %d", len(all), final+1)
	}
	for _, sub := range subs {
		if sub.err != nil {
			t.Errorf("subscriber %q (After %d): %v", sub.name, sub.after, sub.err)
			continue
		}
		for i, id := range sub.ids {
			if want := all[sub.after+uint64(i)]; id != want.ID {
				t.Errorf("subscriber %q: position %d has ID %v, ReadAll says %v", sub.name, want.Position, id, want.ID)
				break
			}
		}
	}
}
