package storetest

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// testReadStreamOptions: From, Backwards and Limit, alone and combined, on a
// stream whose events are interleaved with another stream's.
func testReadStreamOptions(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	for i := range 10 {
		e := newEvent(fmt.Sprintf("read.%d", i))
		m.add("read", []event.Event{e}, mustAppend(t, s, "read", store.Exactly(uint64(i)), e))
		o := newEvent("other")
		m.add("read-other", []event.Event{o}, mustAppend(t, s, "read-other", store.Any, o))
	}
	byVersion := m.stream("read")

	cases := []struct {
		opts store.ReadStreamOptions
		want []uint64 // versions
	}{
		{store.ReadStreamOptions{}, seq(1, 10)},
		{store.ReadStreamOptions{From: 1}, seq(1, 10)},
		{store.ReadStreamOptions{From: 4}, seq(4, 10)},
		{store.ReadStreamOptions{From: 10}, seq(10, 10)},
		{store.ReadStreamOptions{From: 11}, nil},
		{store.ReadStreamOptions{From: 1000}, nil},
		{store.ReadStreamOptions{Limit: 1}, seq(1, 1)},
		{store.ReadStreamOptions{Limit: 3}, seq(1, 3)},
		{store.ReadStreamOptions{Limit: 10}, seq(1, 10)},
		{store.ReadStreamOptions{Limit: 100}, seq(1, 10)},
		{store.ReadStreamOptions{From: 4, Limit: 3}, seq(4, 6)},
		{store.ReadStreamOptions{From: 9, Limit: 3}, seq(9, 10)},
		{store.ReadStreamOptions{From: 11, Limit: 3}, nil},
		{store.ReadStreamOptions{Backwards: true}, seq(10, 1)},
		{store.ReadStreamOptions{Backwards: true, From: 10}, seq(10, 1)},
		{store.ReadStreamOptions{Backwards: true, From: 4}, seq(4, 1)},
		{store.ReadStreamOptions{Backwards: true, From: 1}, seq(1, 1)},
		// From is the highest version to yield: past the end reads from the end.
		{store.ReadStreamOptions{Backwards: true, From: 1000}, seq(10, 1)},
		{store.ReadStreamOptions{Backwards: true, Limit: 1}, seq(10, 10)},
		{store.ReadStreamOptions{Backwards: true, Limit: 3}, seq(10, 8)},
		{store.ReadStreamOptions{Backwards: true, Limit: 100}, seq(10, 1)},
		{store.ReadStreamOptions{Backwards: true, From: 5, Limit: 2}, seq(5, 4)},
		{store.ReadStreamOptions{Backwards: true, From: 2, Limit: 5}, seq(2, 1)},
	}
	for _, c := range cases {
		what := fmt.Sprintf("ReadStream(%+v)", c.opts)
		recs, err := collect(t, what, s.ReadStream(testContext(t), "read", c.opts))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		var want []event.Record
		for _, v := range c.want {
			want = append(want, byVersion[v-1])
		}
		checkRecords(t, what, recs, want)
	}
}

// seq returns from, from±1, ..., to.
func seq(from, to uint64) []uint64 {
	var out []uint64
	for v := from; ; {
		out = append(out, v)
		switch {
		case v == to:
			return out
		case from < to:
			v++
		default:
			v--
		}
	}
}

// testReadStreamNotFound: a stream without events yields ErrStreamNotFound,
// whatever the options, including names that extend or prefix existing ones.
func testReadStreamNotFound(t *testing.T, h Harness) {
	s := newStore(t, h)
	for _, name := range []string{"order-1", "order-10x", "order-2"} {
		mustAppend(t, s, name, store.NoStream, newEvent("created"))
	}
	// A failed first append does not create the stream.
	if _, err := s.Append(testContext(t), "order-3", store.StreamExists, newEvent("created")); err == nil {
		t.Fatal("Append with StreamExists to a new stream succeeded")
	}
	names := []string{"never", "order", "order-", "order-10", "order-1x", "ORDER-1", "order-3"}
	opts := []store.ReadStreamOptions{
		{},
		{From: 5},
		{Limit: 1},
		{Backwards: true},
		{Backwards: true, Limit: 1},
	}
	for _, name := range names {
		for _, o := range opts {
			what := fmt.Sprintf("ReadStream(%q, %+v)", name, o)
			recs, err := collect(t, what, s.ReadStream(testContext(t), name, o))
			if !errors.Is(err, store.ErrStreamNotFound) || len(recs) > 0 {
				t.Errorf("%s: %d records, error %v; want store.ErrStreamNotFound and no records", what, len(recs), err)
			}
		}
	}
}

// testReadAllEmpty: an empty store's log is empty, not an error.
func testReadAllEmpty(t *testing.T, h Harness) {
	s := newStore(t, h)
	for _, o := range []store.ReadAllOptions{{}, {After: 5}, {Limit: 3}, {Filter: store.Filter{Types: []string{"x"}}}} {
		what := fmt.Sprintf("ReadAll(%+v) of an empty store", o)
		if recs := mustCollect(t, what, s.ReadAll(testContext(t), o)); len(recs) != 0 {
			t.Errorf("%s: %d records, want none", what, len(recs))
		}
	}
}

// testReadAllOptions: After, Limit and Filter, alone and combined.
func testReadAllOptions(t *testing.T, h Harness) {
	s := newStore(t, h)
	var m model
	script := []struct{ stream, typ string }{
		{"acct-1", "opened"}, {"acct-2", "opened"}, {"acct-1", "deposited"}, {"user-1", "registered"},
		{"acct", "opened"}, {"acct-2", "deposited"}, {"acct-1", "deposited"}, {"user-1", "renamed"},
		{"acct-10", "opened"}, {"acct-2", "closed"}, {"acct-1", "withdrawn"}, {"acct", "deposited"},
		{"user-2", "registered"}, {"acct-10", "deposited"}, {"acct-1", "closed"}, {"xacct-1", "opened"},
	}
	for _, st := range script {
		e := newEvent(st.typ)
		m.add(st.stream, []event.Event{e}, mustAppend(t, s, st.stream, store.Any, e))
	}
	head := m.head()

	type filter = store.Filter
	cases := []struct {
		opts store.ReadAllOptions
		want int // the number of records expected: guards the model
	}{
		{store.ReadAllOptions{}, 16},
		{store.ReadAllOptions{After: 5}, 11},
		{store.ReadAllOptions{After: head - 1}, 1},
		{store.ReadAllOptions{After: head}, 0},
		{store.ReadAllOptions{After: head + 10}, 0},
		{store.ReadAllOptions{Limit: 3}, 3},
		{store.ReadAllOptions{Limit: 16}, 16},
		{store.ReadAllOptions{Limit: 100}, 16},
		{store.ReadAllOptions{After: 5, Limit: 3}, 3},
		{store.ReadAllOptions{After: 14, Limit: 5}, 2},
		{store.ReadAllOptions{Filter: filter{Types: []string{"deposited"}}}, 5},
		{store.ReadAllOptions{Filter: filter{Types: []string{"opened", "closed"}}}, 7},
		{store.ReadAllOptions{Filter: filter{Types: []string{"deposited", "deposited"}}}, 5},
		{store.ReadAllOptions{Filter: filter{Types: []string{"unknown"}}}, 0},
		{store.ReadAllOptions{Filter: filter{Types: []string{"Opened"}}}, 0},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "acct-"}}, 10},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "acct"}}, 12},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "acct-1"}}, 7},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "user-1"}}, 2},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "zzz"}}, 0},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "acct-", Types: []string{"opened"}}}, 3},
		{store.ReadAllOptions{Filter: filter{Types: []string{"deposited"}}, Limit: 2}, 2},
		{store.ReadAllOptions{Filter: filter{Types: []string{"deposited"}}, After: 6}, 3},
		{store.ReadAllOptions{Filter: filter{StreamPrefix: "acct", Types: []string{"deposited", "closed"}}, After: 3, Limit: 4}, 4},
	}
	for _, c := range cases {
		what := fmt.Sprintf("ReadAll(%+v)", c.opts)
		recs, err := collect(t, what, s.ReadAll(testContext(t), c.opts))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		want := m.all(c.opts.After, c.opts.Filter)
		if c.opts.Limit > 0 && len(want) > c.opts.Limit {
			want = want[:c.opts.Limit]
		}
		if len(want) != c.want {
			t.Fatalf("storetest bug: the model expects %d records for %s, the table %d", len(want), what, c.want)
		}
		checkRecords(t, what, recs, want)
	}
}

// testReadBreakEarly: leaving a read loop early releases the read: the store
// goes on appending, reading and closing.
func testReadBreakEarly(t *testing.T, h Harness) {
	s := newStore(t, h)
	for i := range 5 {
		mustAppend(t, s, fmt.Sprintf("early-%d", i%2), store.Any, newEvents(20, "early")...)
	}
	ctx := testContext(t)
	reads := map[string]func() iter.Seq2[event.Record, error]{
		"ReadStream": func() iter.Seq2[event.Record, error] {
			return s.ReadStream(ctx, "early-0", store.ReadStreamOptions{})
		},
		"ReadStream backwards": func() iter.Seq2[event.Record, error] {
			return s.ReadStream(ctx, "early-0", store.ReadStreamOptions{Backwards: true})
		},
		"ReadAll":   func() iter.Seq2[event.Record, error] { return s.ReadAll(ctx, store.ReadAllOptions{}) },
		"Subscribe": func() iter.Seq2[event.Record, error] { return s.Subscribe(ctx, store.SubscribeOptions{}) },
	}
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		for _, stopAt := range []int{1, 7} {
			n := 0
			within(t, fmt.Sprintf("%s, breaking after %d records", name, stopAt), func() {
				for _, err := range reads[name]() {
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					if n++; n == stopAt {
						break
					}
				}
			})
			if n != stopAt {
				t.Fatalf("%s: loop saw %d records before breaking, want %d", name, n, stopAt)
			}
			within(t, fmt.Sprintf("Append after breaking out of %s", name), func() {
				if _, err := s.Append(ctx, "early-0", store.Any, newEvent("after")); err != nil {
					t.Errorf("Append after breaking out of %s: %v", name, err)
				}
			})
		}
	}
	before := mustHead(t, s)
	recs := readAll(t, s)
	if uint64(len(recs)) != before {
		t.Fatalf("ReadAll after early breaks: %d records, Head %d", len(recs), before)
	}
	if err := closeWithin(s, waitTimeout); err != nil {
		t.Fatalf("Close after early breaks: %v", err)
	}
}

// testReadAppendInsideLoop: a loop over a read may append (a process
// manager reacting to what it reads); neither deadlocks, and the read stays
// in order without gaps, with or without the new records.
func testReadAppendInsideLoop(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "loop", store.NoStream, newEvents(10, "seed")...)
	ctx := testContext(t)

	within(t, "ReadAll with Append in the loop body", func() {
		next := uint64(1)
		for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
			if err != nil {
				t.Errorf("ReadAll: %v", err)
				return
			}
			if r.Position != next {
				t.Errorf("ReadAll while appending: position %d, want %d", r.Position, next)
				return
			}
			next++
			if r.Position <= 10 {
				if _, err := s.Append(ctx, "loop-reaction", store.Any, newEvent("reaction")); err != nil {
					t.Errorf("Append inside ReadAll loop: %v", err)
					return
				}
			}
		}
	})
	within(t, "ReadStream with Append to the same stream in the loop body", func() {
		next := uint64(1)
		for r, err := range s.ReadStream(ctx, "loop", store.ReadStreamOptions{}) {
			if err != nil {
				t.Errorf("ReadStream: %v", err)
				return
			}
			if r.Version != next {
				t.Errorf("ReadStream while appending: version %d, want %d", r.Version, next)
				return
			}
			next++
			if r.Version <= 10 {
				if _, err := s.Append(ctx, "loop", store.Any, newEvent("more")); err != nil {
					t.Errorf("Append inside ReadStream loop: %v", err)
					return
				}
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	wantHead(t, s, 30, "after appends inside read loops")
	wantStreamLen(t, s, "loop", 20, "after appends inside its read loop")
}
