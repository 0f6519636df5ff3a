package bank_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples/bank"
	"github.com/stratadb/strata/pgstate"
)

// For random histories and snapshot points, the state loaded from a
// snapshot plus the events after it equals a full replay.
// Both snapshot stores: Pebble in the data directory, and PostgreSQL.
func TestSnapshotPlusTailEqualsFullReplay(t *testing.T) {
	t.Run("pebble", func(t *testing.T) {
		snaps, err := aggregate.OpenSnapshots(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer snaps.Close()
		testSnapshotPlusTail(t, snaps)
	})
	t.Run("postgres", func(t *testing.T) {
		url := os.Getenv("STRATA_TEST_POSTGRES_URL")
		if url == "" {
			t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the PostgreSQL snapshot store (set it to a PostgreSQL URL to run it)")
		}
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		schema := fmt.Sprintf("strata_snapshots_test_%d", os.Getpid())
		defer pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		snaps, err := pgstate.Open(ctx, pool, schema)
		if err != nil {
			t.Fatal(err)
		}
		testSnapshotPlusTail(t, snaps)
	})
}

func testSnapshotPlusTail(t *testing.T, snaps aggregate.SnapshotStore) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg := event.NewRegistry()
	if err := bank.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		every := uint64(rapid.IntRange(0, 12).Draw(rt, "every"))
		withSnaps, err := aggregate.NewRepository(l, reg, bank.Decider, aggregate.Options{Snapshots: snaps, SnapshotEvery: every})
		if err != nil {
			rt.Fatal(err)
		}
		replay, _ := aggregate.NewRepository(l, reg, bank.Decider, aggregate.Options{})
		id := "prop-" + decimal.NewFromInt(int64(run)).String()
		if _, err := withSnaps.Handle(ctx, id, bank.Open{Owner: "p"}); err != nil {
			rt.Fatal(err)
		}
		for i := range rapid.IntRange(0, 60).Draw(rt, "commands") {
			cents := rapid.Int64Range(1, 100_000).Draw(rt, "cents")
			amount := decimal.New(cents, -2)
			var cmd bank.Command = bank.Deposit{Amount: amount}
			if rapid.Bool().Draw(rt, "withdraw") {
				cmd = bank.Withdraw{Amount: amount}
			}
			if _, err := withSnaps.Handle(ctx, id, cmd); err != nil && !errors.Is(err, bank.ErrOverdraft) {
				rt.Fatal(err)
			}
			if rapid.IntRange(0, 9).Draw(rt, "snapshot now") == 0 {
				if _, err := withSnaps.Snapshot(ctx, id); err != nil {
					rt.Fatalf("snapshot after command %d: %v", i, err)
				}
			}
			got, gotV, err := withSnaps.Load(ctx, id)
			if err != nil {
				rt.Fatal(err)
			}
			want, wantV, err := replay.Load(ctx, id)
			if err != nil {
				rt.Fatal(err)
			}
			if gotV != wantV || !got.Balance.Equal(want.Balance) || got.Owner != want.Owner || got.Open != want.Open {
				rt.Fatalf("after command %d: snapshot+tail %+v@%d, replay %+v@%d", i, got, gotV, want, wantV)
			}
		}
	})
}
