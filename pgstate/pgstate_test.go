package pgstate

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/aggregate"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the PostgreSQL state tests (set it to a PostgreSQL URL to run them)")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("strata_pgstate_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		pool.Close()
	})
	s, err := Open(ctx, pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, pool, schema); err != nil { // a second node
		t.Fatal(err)
	}
	return s
}

func TestSnapshotsKeepTheNewestOfTheSameCode(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, ok, err := s.LoadSnapshot(ctx, "acct-1"); ok || err != nil {
		t.Fatalf("missing snapshot: ok %v, %v", ok, err)
	}
	at := time.Date(2026, 11, 28, 12, 0, 0, 123456000, time.UTC)
	snap := func(v uint64, fp, state string) aggregate.Snapshot {
		return aggregate.Snapshot{Stream: "acct-1", Version: v, Position: 100 + v, Time: at, Fingerprint: fp, State: []byte(state)}
	}
	for _, tc := range []struct {
		save aggregate.Snapshot
		want uint64 // the version then stored
	}{
		{snap(5, "bank/v1/a", `{"balance":"5"}`), 5},
		{snap(9, "bank/v1/a", `{"balance":"9"}`), 9},
		{snap(7, "bank/v1/a", `{"balance":"7"}`), 9}, // older, same code: dropped
		{snap(3, "bank/v2/b", `{"b":"3"}`), 3},       // other code: replaces
	} {
		if err := s.SaveSnapshot(ctx, tc.save); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.LoadSnapshot(ctx, "acct-1")
		if err != nil || !ok || got.Version != tc.want {
			t.Fatalf("after saving version %d: %+v, %v, %v; want version %d", tc.save.Version, got, ok, err, tc.want)
		}
		if got.Version == tc.save.Version && (string(got.State) != string(tc.save.State) || got.Position != tc.save.Position || !got.Time.Equal(at) || got.Fingerprint != tc.save.Fingerprint) {
			t.Fatalf("round trip: %+v, saved %+v", got, tc.save)
		}
	}
	if err := s.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "x", Version: 1 << 63}); err == nil {
		t.Fatal("a version beyond int64 was accepted")
	}
}

func TestCheckpointsRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	a, b := s.Checkpoint("rules"), s.Checkpoint("other")
	if data, err := a.LoadCheckpoint(ctx); data != nil || err != nil {
		t.Fatalf("no checkpoint yet: %q, %v", data, err)
	}
	for _, v := range []string{"first", "second\x00binary"} {
		if err := a.SaveCheckpoint(ctx, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if data, err := a.LoadCheckpoint(ctx); string(data) != v || err != nil {
			t.Fatalf("load = %q, %v; want %q", data, err, v)
		}
	}
	if data, _ := b.LoadCheckpoint(ctx); data != nil {
		t.Fatalf("checkpoints of different names share data: %q", data)
	}
}
