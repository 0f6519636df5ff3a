package aggregate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/eventlog"
)

// clock is a settable time source for the log's record times.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newClockedRepo(t testing.TB) (*aggregate.Repository[tallyState, any, tallyEvent], *clock) {
	c := &clock{now: t0}
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	repo, err := aggregate.NewRepository(l, tallyRegistry(t.(*testing.T)), tally, aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return repo, c
}

func TestStateAtTimeAndVersion(t *testing.T) {
	repo, c := newClockedRepo(t)
	ctx := context.Background()
	for _, step := range []struct {
		at time.Duration
		n  int
	}{{1 * time.Second, 1}, {3 * time.Second, 10}, {3 * time.Second, 100}, {10 * time.Second, 1000}} {
		c.set(t0.Add(step.at))
		if _, err := repo.Handle(ctx, "1", Add{N: step.n}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		at        time.Duration
		total     int
		atVersion uint64
	}{
		{0, 0, 0}, {time.Second, 1, 1}, {2 * time.Second, 1, 1}, {3 * time.Second, 111, 3},
		{9 * time.Second, 111, 3}, {10 * time.Second, 1111, 4}, {time.Hour, 1111, 4},
	}
	for _, tc := range cases {
		s, v, err := repo.StateAt(ctx, "1", t0.Add(tc.at))
		if err != nil || s.Total != tc.total || v != tc.atVersion {
			t.Errorf("StateAt(+%v) = %d@%d, %v; want %d@%d", tc.at, s.Total, v, err, tc.total, tc.atVersion)
		}
	}
	for v, want := range []int{0, 1, 11, 111, 1111, 1111} {
		s, _, err := repo.StateAtVersion(ctx, "1", uint64(v))
		if err != nil || s.Total != want {
			t.Errorf("StateAtVersion(%d) = %d, %v; want %d", v, s.Total, err, want)
		}
	}
	var changes []aggregate.Change[tallyState]
	for ch, err := range repo.Changes(ctx, "1", t0.Add(2*time.Second), t0.Add(20*time.Second)) {
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, ch)
	}
	want := []struct {
		from, to time.Duration
		total    int
	}{{1 * time.Second, 3 * time.Second, 1}, {3 * time.Second, 3 * time.Second, 11}, {3 * time.Second, 10 * time.Second, 111}, {10 * time.Second, -1, 1111}}
	if len(changes) != len(want) {
		t.Fatalf("changes = %+v", changes)
	}
	for i, w := range want {
		ch := changes[i]
		wantTo := time.Time{}
		if w.to >= 0 {
			wantTo = t0.Add(w.to)
		}
		if !ch.From.Equal(t0.Add(w.from)) || !ch.To.Equal(wantTo) || ch.State.Total != w.total {
			t.Errorf("change %d = %v..%v %d, want +%v..+%v %d", i, ch.From, ch.To, ch.State.Total, w.from, w.to, w.total)
		}
	}
}

// Samples against the dumb reference: StateAt at every instant.
func TestSamplesMatchStateAtEveryInstant(t *testing.T) {
	repo, c := newClockedRepo(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		// One log for all runs: each run has its own stream and its own
		// hour, since record times never go backwards in a log.
		run++
		stream := fmt.Sprintf("s%d", run)
		base := t0.Add(time.Duration(run) * time.Hour)
		ctx := context.Background()
		at := time.Duration(0)
		for range rapid.IntRange(0, 20).Draw(rt, "events") {
			at += time.Duration(rapid.IntRange(0, 5000).Draw(rt, "gap ms")) * time.Millisecond
			c.set(base.Add(at))
			if _, err := repo.Handle(ctx, stream, Add{N: rapid.IntRange(1, 9).Draw(rt, "n")}); err != nil {
				rt.Fatal(err)
			}
		}
		from := base.Add(time.Duration(rapid.IntRange(-2000, 60000).Draw(rt, "from ms")) * time.Millisecond)
		to := from.Add(time.Duration(rapid.IntRange(0, 60000).Draw(rt, "span ms")) * time.Millisecond)
		// At most ~300 samples: the reference refolds for each one.
		span := to.Sub(from)
		minEvery := int(span/(300*time.Millisecond)) + 1
		every := time.Duration(rapid.IntRange(minEvery, minEvery+7000).Draw(rt, "every ms")) * time.Millisecond
		want := from
		for s, err := range repo.Samples(ctx, stream, from, to, every) {
			if err != nil {
				rt.Fatal(err)
			}
			if !s.At.Equal(want) {
				rt.Fatalf("sample at %v, want %v", s.At, want)
			}
			ref, v, err := repo.StateAt(ctx, stream, s.At)
			if err != nil || ref != s.State || v != s.Version {
				rt.Fatalf("sample at %v = %+v@%d, StateAt = %+v@%d", s.At, s.State, s.Version, ref, v)
			}
			want = want.Add(every)
		}
		if want.Before(to) {
			rt.Fatalf("samples stopped at %v before %v", want, to)
		}
	})
}
