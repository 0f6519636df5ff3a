package pgstore

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// TestInCalls: the i-th append to a stream goes in the i-th call, a call's
// streams are distinct and sorted, and every stream keeps its appends'
// order.
func TestInCalls(t *testing.T) {
	var group []*appendReq
	for i, stream := range []string{"b", "a", "b", "c", "b", "a"} {
		group = append(group, &appendReq{stream: stream, again: i}) // again: the original index
	}
	ordered, calls := inCalls(group)
	var got [][]string
	var flat []*appendReq
	for _, c := range calls {
		var names []string
		for _, r := range c {
			names = append(names, fmt.Sprintf("%s%d", r.stream, r.again))
		}
		got = append(got, names)
		flat = append(flat, c...)
	}
	want := [][]string{{"a1", "b0", "c3"}, {"a5", "b2"}, {"b4"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if !slices.Equal(flat, ordered) {
		t.Fatalf("the returned order is not the calls' order")
	}
	if len(group) != 6 || group[0].stream != "b" {
		t.Fatalf("inCalls changed its argument")
	}
}

// TestGroupOutcomes commits one group holding, besides plain appends,
// several appends to one stream (each must see the ones before it), a
// wrong expected version, a duplicate id (which makes the set-based insert
// fail, so that the group's appends run one by one) and a retry: each
// append gets its own outcome, and the positions the group acknowledges
// are the ones the log reads back. Without the duplicate id, the same
// group takes the set-based path throughout.
func TestGroupOutcomes(t *testing.T) {
	for _, dup := range []bool{false, true} {
		t.Run(fmt.Sprintf("dup=%v", dup), func(t *testing.T) { testGroupOutcomes(t, dup) })
	}
}

func testGroupOutcomes(t *testing.T, dup bool) {
	url := testURL(t)
	s := openStore(t, url, newSchema(t, url))
	ctx := t.Context()

	// Before the group: "c" at version 1, "d" at 1, "e" at 2.
	dEvs := testEvents(1, "d")
	eEvs := testEvents(2, "e")
	for _, a := range []struct {
		stream string
		evs    []event.Event
	}{{"c", testEvents(1, "c")}, {"d", dEvs}, {"e", eEvs}} {
		if _, err := s.Append(ctx, a.stream, store.NoStream, a.evs...); err != nil {
			t.Fatal(err)
		}
	}
	eOriginal, err := s.Append(ctx, "e", store.Exactly(2), testEvents(1, "e")...)
	if err != nil {
		t.Fatal(err)
	}
	var eRetry []event.Event
	for r, err := range s.ReadStream(ctx, "e", store.ReadStreamOptions{From: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		eRetry = append(eRetry, r.Event)
	}

	type step struct {
		stream  string
		exp     store.ExpectedVersion
		evs     []event.Event
		version uint64 // the stream's version after it, if it succeeds
		check   func(error) bool
	}
	ok := func(err error) bool { return err == nil }
	wrong := func(actual uint64) func(error) bool {
		return func(err error) bool { return wrongVersionDiff(err, actual) == "" }
	}
	invalid := func(err error) bool { return errors.Is(err, event.ErrInvalid) }
	a1, a2, a3 := testEvents(2, "a"), testEvents(1, "a"), testEvents(1, "a")
	dupD := append(testEvents(1, "d"), dEvs[0])
	steps := []step{
		{"a", store.NoStream, a1, 2, ok},
		{"b", store.Any, testEvents(3, "b"), 3, ok},
		{"a", store.Exactly(2), a2, 3, ok}, // sees the first append to "a"
		{"c", store.Exactly(0), testEvents(1, "c"), 0, wrong(1)},
		{"a", store.Exactly(2), a3, 0, wrong(3)}, // sees both before it
		{"d", store.Exactly(1), dupD, 0, invalid},
		{"e", store.Exactly(2), eRetry, 3, ok}, // a retry
		{"a", store.StreamExists, testEvents(1, "a"), 4, ok},
	}
	if !dup {
		steps = slices.DeleteFunc(steps, func(st step) bool { return st.stream == "d" })
	}
	var group []*appendReq
	for _, st := range steps {
		r, err := s.newAppendReq(ctx, st.stream, st.exp, st.evs)
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, r)
	}
	if again := s.commitGroup(group); len(again) != 0 {
		t.Fatalf("%d appends carried into a newer transaction", len(again))
	}
	for i, st := range steps {
		<-group[i].done
		r := group[i]
		if !st.check(r.err) {
			t.Errorf("append %d (%q, %v): error %v", i, st.stream, st.exp, r.err)
			continue
		}
		if r.err == nil && r.res.Version != st.version {
			t.Errorf("append %d (%q, %v): version %d, want %d", i, st.stream, st.exp, r.res.Version, st.version)
		}
	}
	for i, st := range steps {
		if res := group[i].res; st.stream == "e" && res != eOriginal {
			t.Errorf("retry: %+v, want the original %+v", res, eOriginal)
		}
	}

	// Every acknowledged position holds what its append wrote, and the log
	// is dense.
	byPos := map[uint64]event.Record{}
	var n uint64
	for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Position != n {
			t.Fatalf("record %d at position %d", n, r.Position)
		}
		byPos[r.Position] = r
	}
	for i, st := range steps {
		r := group[i]
		if r.err != nil {
			continue
		}
		for j, e := range st.evs {
			rec := byPos[r.res.FirstPosition+uint64(j)]
			if rec.ID != e.ID || rec.Stream != st.stream || rec.Version != st.version-uint64(len(st.evs)-j-1) {
				t.Errorf("append %d, event %d: position %d holds %s@%d (%s), want %s@%d (%s)", i, j,
					r.res.FirstPosition+uint64(j), rec.Stream, rec.Version, rec.ID, st.stream, st.version-uint64(len(st.evs)-j-1), e.ID)
			}
		}
		if got := r.res.LastPosition - r.res.FirstPosition + 1; got != uint64(len(st.evs)) {
			t.Errorf("append %d: positions %d..%d for %d events", i, r.res.FirstPosition, r.res.LastPosition, len(st.evs))
		}
	}
	if head, err := s.Head(ctx); err != nil || head != n {
		t.Fatalf("Head = %d, %v; want %d", head, err, n)
	}
}
