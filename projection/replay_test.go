package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// fillSums appends n events spread over streams streams, "n" = position-ish.
func fillSums(t *testing.T, f *fixture, n, streams int) uint64 {
	t.Helper()
	var last uint64
	for i := range n {
		last = f.append(t, fmt.Sprintf("s-%d", i*7%streams), "added", i%13+1).LastPosition
	}
	return last
}

// scratch builds sums with a plain Runner into a fresh database.
func scratch(t *testing.T, f *fixture, head uint64) map[string][2]int {
	t.Helper()
	g := f.sibling(t)
	r := NewRunner(sums{}, g.db, f.log, Options{BatchSize: 100})
	start(t, r)
	waitFor(t, r, head)
	return sumsTable(t, g.db)
}

func lastPositions(t *testing.T, db *sql.DB) map[string]uint64 {
	t.Helper()
	rows, err := db.Query(`SELECT stream, last_position FROM sums`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var s string
		var p uint64
		if err := rows.Scan(&s, &p); err != nil {
			t.Fatal(err)
		}
		out[s] = p
	}
	return out
}

func TestReplayBuildsWhatARunnerBuilds(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		head := fillSums(t, f, 2000, 53)
		want := scratch(t, f, head)
		wantLast := map[string]uint64{}
		for rec, err := range f.log.ReadAll(context.Background(), storeAll()) {
			if err != nil {
				t.Fatal(err)
			}
			wantLast[rec.Stream] = rec.Position
		}
		for _, tc := range []struct{ workers, flush int }{{1, 0}, {2, 0}, {3, 7}, {7, 100}, {16, 1}} {
			t.Run(fmt.Sprintf("workers=%d,flush=%d", tc.workers, tc.flush), func(t *testing.T) {
				g := f.sibling(t)
				var calls atomic.Int64
				pos, err := Replay(context.Background(), sums{}, g.db, f.log, ReplayOptions{
					Workers: tc.workers, FlushEvery: tc.flush,
					Progress: func(p ReplayProgress) {
						calls.Add(1)
						if p.Position > p.Until || p.Until != head {
							t.Errorf("progress %+v", p)
						}
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				if pos != head {
					t.Fatalf("Replay returned %d, want the head %d", pos, head)
				}
				if got := sumsTable(t, g.db); !maps.Equal(got, want) {
					t.Fatalf("replayed table differs from a runner's:\n got %v\nwant %v", got, want)
				}
				// Within a stream the events were applied in log order.
				if got := lastPositions(t, g.db); !maps.Equal(got, wantLast) {
					t.Fatalf("last positions differ")
				}
				if cp, err := checkpoint(context.Background(), g.db, "sums"); err != nil || cp != head {
					t.Fatalf("checkpoint %d, %v; want %d", cp, err, head)
				}
				if parts, _, err := loadPartitions(context.Background(), g.db, "sums"); err != nil || parts != nil {
					t.Fatalf("partition checkpoints left behind: %v, %v", parts, err)
				}
				if calls.Load() == 0 {
					t.Fatal("Progress never called")
				}
			})
		}
	})
}

// counting counts the events its projection is given.
type counting struct {
	sums
	n *atomic.Int64
}

func (c counting) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	if err := c.sums.Apply(ctx, tx, batch); err != nil {
		return err
	}
	c.n.Add(int64(len(batch))) // counted only if the batch applied
	return nil
}

func TestReplayResumesFromItsPartitionCheckpoints(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		head := fillSums(t, f, 3000, 41)
		want := scratch(t, f, head)
		g := f.sibling(t)

		ctx, cancel := context.WithCancel(context.Background())
		var first atomic.Int64
		var commits atomic.Int64
		_, err := Replay(ctx, counting{n: &first}, g.db, f.log, ReplayOptions{
			Workers: 3, FlushEvery: 50,
			Progress: func(ReplayProgress) {
				if commits.Add(1) == 10 {
					cancel() // as good as a crash: commits already made stay
				}
			},
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted Replay returned %v", err)
		}
		parts, until, err := loadPartitions(context.Background(), g.db, "sums")
		if err != nil || len(parts) != 3 || until != head {
			t.Fatalf("partition checkpoints %v (target %d), %v", parts, until, err)
		}
		if cp, _ := checkpoint(context.Background(), g.db, "sums"); cp != 0 {
			t.Fatalf("checkpoint moved to %d before the replay finished", cp)
		}
		// A runner must not start on a half-replayed projection.
		r := NewRunner(sums{}, g.db, f.log, Options{})
		if err := r.Run(context.Background()); !errors.Is(err, errReplayUnfinished) {
			t.Fatalf("Runner on an unfinished replay: %v", err)
		}

		// Resume with another worker count: the stored partitioning wins.
		var second atomic.Int64
		pos, err := Replay(context.Background(), counting{n: &second}, g.db, f.log, ReplayOptions{Workers: 5, FlushEvery: 50})
		if err != nil || pos != head {
			t.Fatalf("resumed Replay: %d, %v", pos, err)
		}
		if got := sumsTable(t, g.db); !maps.Equal(got, want) {
			t.Fatalf("resumed replay differs from a scratch build")
		}
		if first.Load() == 0 || first.Load()+second.Load() != int64(head) {
			t.Fatalf("events applied: %d before the interruption + %d after = %d, want %d (each once)", first.Load(), second.Load(), first.Load()+second.Load(), head)
		}
	})
}

func TestAfterAReplayARunnerContinues(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		fillSums(t, f, 500, 10)
		g := f.sibling(t)
		if _, err := Replay(context.Background(), sums{}, g.db, f.log, ReplayOptions{Workers: 2}); err != nil {
			t.Fatal(err)
		}
		head := fillSums(t, f, 300, 17)
		r := NewRunner(sums{}, g.db, f.log, Options{})
		start(t, r)
		waitFor(t, r, head)
		if got, want := sumsTable(t, g.db), scratch(t, f, head); !maps.Equal(got, want) {
			t.Fatalf("replay + runner differs from a scratch build")
		}
		// A second Replay finds nothing to do.
		if pos, err := Replay(context.Background(), sums{}, g.db, f.log, ReplayOptions{Until: head}); err != nil || pos != head {
			t.Fatalf("Replay of a caught-up projection: %d, %v", pos, err)
		}
	})
}

func TestReplayStopsAtAFailingEventAndKeepsCommittedWork(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		fillSums(t, f, 400, 9)
		f.append(t, "s-bad", "poison", 1)
		head := fillSums(t, f, 400, 9)
		g := f.sibling(t)
		_, err := Replay(context.Background(), sums{failOn: "poison"}, g.db, f.log, ReplayOptions{Workers: 2, FlushEvery: 10})
		if err == nil || !strings.Contains(err.Error(), "cannot handle poison") || !strings.Contains(err.Error(), "partition") {
			t.Fatalf("Replay over a failing event: %v", err)
		}
		if cp, _ := checkpoint(context.Background(), g.db, "sums"); cp != 0 {
			t.Fatalf("checkpoint moved to %d", cp)
		}
		parts, _, _ := loadPartitions(context.Background(), g.db, "sums")
		if parts == nil {
			t.Fatal("partition checkpoints gone after a failure")
		}
		// Fixed code resumes and finishes.
		if pos, err := Replay(context.Background(), sums{}, g.db, f.log, ReplayOptions{}); err != nil || pos != head {
			t.Fatalf("resumed: %d, %v", pos, err)
		}
	})
}

func storeAll() store.ReadAllOptions { return store.ReadAllOptions{} }

// Runners of the partitions of one projection share its work: together they
// build what one runner builds (each event applied once, a stream's events
// in log order), and each share keeps a checkpoint of its own.
func TestPartitionedRunnersBuildWhatOneRunnerBuilds(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		head := fillSums(t, f, 600, 23)
		one := f.sibling(t)
		r := NewRunner(sums{}, one.db, f.log, Options{})
		start(t, r)
		waitFor(t, r, head)
		want, wantLast := sumsTable(t, one.db), lastPositions(t, one.db)

		g := f.sibling(t)
		const n = 3
		var runners []*Runner
		for k := range n {
			r := NewRunner(sums{}, g.db, f.log, Options{BatchSize: 50, Partition: Partition{Index: k, Count: n}})
			start(t, r)
			runners = append(runners, r)
		}
		live := f.append(t, "s-live", "added", 5)
		want["s-live"] = [2]int{5, 1}
		wantLast["s-live"] = live.LastPosition
		for _, r := range runners {
			waitFor(t, r, live.LastPosition)
		}
		if got := sumsTable(t, g.db); !maps.Equal(got, want) {
			t.Fatalf("partitioned runners built\n %v\nwant %v", got, want)
		}
		if got := lastPositions(t, g.db); !maps.Equal(got, wantLast) {
			t.Fatalf("a stream's events were applied out of order")
		}
		for k := range n {
			name := PartitionName("sums", Partition{Index: k, Count: n})
			if cp, err := checkpoint(context.Background(), g.db, name); err != nil || cp != live.LastPosition {
				t.Fatalf("checkpoint of %s = %d, %v; want %d", name, cp, err, live.LastPosition)
			}
		}
		if cp, _ := checkpoint(context.Background(), g.db, "sums"); cp != 0 {
			t.Fatalf("the unpartitioned checkpoint moved to %d", cp)
		}
	})
}

func TestRunnerRefusesAPartitionThatDoesNotExist(t *testing.T) {
	f := newFixture(t)
	for _, p := range []Partition{{Index: 3, Count: 3}, {Index: -1, Count: 2}, {Count: -1}} {
		err := NewRunner(sums{}, f.db, f.log, Options{Partition: p}).Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("partition %+v: Run = %v", p, err)
		}
	}
}
