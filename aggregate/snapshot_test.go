package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"testing"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// countingStore counts the events repositories read.
type countingStore struct {
	store.Store
	reads int
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		for r, err := range c.Store.ReadStream(ctx, stream, opts) {
			if err == nil {
				c.reads++
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

type snapEnv struct {
	log   *eventlog.Log
	snaps *aggregate.PebbleSnapshots
	count *countingStore
}

func newSnapEnv(t *testing.T) *snapEnv {
	t.Helper()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	snaps, err := aggregate.OpenSnapshots(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snaps.Close() })
	return &snapEnv{log: l, snaps: snaps, count: &countingStore{Store: l}}
}

func (e *snapEnv) repo(t *testing.T, d aggregate.Decider[tallyState, any, tallyEvent], every uint64) *aggregate.Repository[tallyState, any, tallyEvent] {
	t.Helper()
	r, err := aggregate.NewRepository(e.count, tallyRegistry(t), d, aggregate.Options{Snapshots: e.snaps, SnapshotEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSnapshotPolicyAndLoadFromSnapshot(t *testing.T) {
	env := newSnapEnv(t)
	repo := env.repo(t, tally, 10)
	ctx := context.Background()
	for range 25 {
		if _, err := repo.Handle(ctx, "1", Add{N: 2}); err != nil {
			t.Fatal(err)
		}
	}
	snap, ok, err := env.snaps.LoadSnapshot(ctx, "tally-1")
	if err != nil || !ok || snap.Version != 20 {
		t.Fatalf("snapshot after 25 events with every=10: %+v %v %v", snap, ok, err)
	}
	env.count.reads = 0
	state, version, err := repo.Load(ctx, "1")
	if err != nil || state.Total != 50 || version != 25 {
		t.Fatalf("Load = %+v, %d, %v", state, version, err)
	}
	if env.count.reads != 6 { // the snapshot's own event (checked) and 5 after it
		t.Fatalf("load read %d events, want 6", env.count.reads)
	}

	// On demand.
	s, err := repo.Snapshot(ctx, "1")
	if err != nil || s.Version != 25 {
		t.Fatalf("Snapshot = %+v, %v", s, err)
	}
	var st tallyState
	if json.Unmarshal(s.State, &st); st.Total != 50 {
		t.Fatalf("snapshot state %s", s.State)
	}
	if _, err := repo.Snapshot(ctx, "nobody"); !errors.Is(err, store.ErrStreamNotFound) {
		t.Fatalf("Snapshot of an empty stream = %v", err)
	}
}

func TestSnapshotOfOtherCodeIsIgnoredAndReplaced(t *testing.T) {
	env := newSnapEnv(t)
	ctx := context.Background()
	v1 := env.repo(t, tally, 5)
	for range 5 {
		v1.Handle(ctx, "1", Add{N: 1})
	}
	old, _, _ := env.snaps.LoadSnapshot(ctx, "tally-1")

	// Version 2 of the decider counts every Added twice: a v1 snapshot
	// must not be read by it.
	doubled := tally
	doubled.Version = 2
	doubled.Evolve = func(s tallyState, e tallyEvent) tallyState {
		if a, ok := e.(Added); ok {
			s.Total += 2 * a.N
			s.Adds++
		}
		return s
	}
	v2 := env.repo(t, doubled, 5)
	state, version, err := v2.Load(ctx, "1")
	if err != nil || state.Total != 10 || version != 5 {
		t.Fatalf("v2 load = %+v, %d, %v; want the v1 snapshot ignored", state, version, err)
	}
	replaced, _, _ := env.snaps.LoadSnapshot(ctx, "tally-1")
	if replaced.Fingerprint == old.Fingerprint {
		t.Fatal("the stale snapshot was not replaced")
	}
	var st tallyState
	json.Unmarshal(replaced.State, &st)
	if st.Total != 10 || replaced.Version != 5 {
		t.Fatalf("replacement snapshot = %+v (%s)", replaced, replaced.State)
	}
}

func TestSnapshotOfAnotherLogIsIgnored(t *testing.T) {
	env := newSnapEnv(t)
	ctx := context.Background()
	repo := env.repo(t, tally, 0)
	for range 3 {
		repo.Handle(ctx, "1", Add{N: 1})
	}
	snap, err := repo.Snapshot(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot claims a position the stream's event does not have (as
	// after the log was rebuilt) and a state that would be wrong.
	snap.Position += 100
	snap.State = json.RawMessage(`{"Total":999,"Adds":9}`)
	env.snaps.SaveSnapshot(ctx, snap)
	state, _, err := repo.Load(ctx, "1")
	if err != nil || state.Total != 3 {
		t.Fatalf("Load with a foreign snapshot = %+v, %v", state, err)
	}
	// A snapshot of a stream that no longer reaches its version.
	snap.Version, snap.Position = 50, 50
	env.snaps.SaveSnapshot(ctx, snap)
	if state, version, err := repo.Load(ctx, "1"); err != nil || state.Total != 3 || version != 3 {
		t.Fatalf("Load with a snapshot past the end = %+v, %d, %v", state, version, err)
	}
}
