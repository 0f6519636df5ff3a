package peers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/pgstore"
	"github.com/stratadb/strata/store"
)

// payload matches the eventlog benchmarks' (a 145-byte frame there).
var payload = []byte(`{"account":"acct-000042","amount":"125.40","currency":"EUR"}`)

func pgURL(tb testing.TB) string {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		tb.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the PostgreSQL peer")
	}
	return url
}

func TestNaivePGConflictsAndCounts(t *testing.T) {
	ctx := context.Background()
	pg, err := OpenNaivePG(ctx, pgURL(t), fmt.Sprintf("strata_peer_test_%d", os.Getpid()), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	if err := pg.Append(ctx, "s", 0, "t", payload); err != nil {
		t.Fatal(err)
	}
	if err := pg.Append(ctx, "s", 0, "t", payload); !errors.Is(err, ErrConflict) {
		t.Fatalf("second append at version 1 = %v, want ErrConflict", err)
	}
	if n, err := pg.Count(ctx); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

var peerWriters = flag.Int("peer-writers", 8, "BenchmarkPeers: concurrent writers, each on its own stream")

// BenchmarkPeers runs the same workload, durable single-event appends with
// an expected version from -peer-writers writers each on its own stream,
// against Strata's embedded log, Strata's PostgreSQL store and a naive
// PostgreSQL table.
func BenchmarkPeers(b *testing.B) {
	writers := *peerWriters
	b.Run("strata", func(b *testing.B) {
		l, err := eventlog.Open(b.TempDir(), eventlog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		runWriters(b, writers, func(ctx context.Context, stream string, v int64) error {
			_, err := l.Append(ctx, stream, store.Exactly(uint64(v)), event.Event{Type: "payment.authorized", Data: payload})
			return err
		})
	})
	b.Run("pgstore", func(b *testing.B) {
		st := openPGStore(b, writers)
		runWriters(b, writers, func(ctx context.Context, stream string, v int64) error {
			_, err := st.Append(ctx, stream, store.Exactly(uint64(v)), event.Event{Type: "payment.authorized", Data: payload})
			return err
		})
	})
	b.Run("postgres-naive", func(b *testing.B) {
		pg := openNaive(b, writers)
		runWriters(b, writers, func(ctx context.Context, stream string, v int64) error {
			return pg.Append(ctx, stream, v, "payment.authorized", payload)
		})
	})
}

func runWriters(b *testing.B, writers int, appendAt func(ctx context.Context, stream string, version int64) error) {
	runWritersN(b, writers, b.N, appendAt)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// runWritersN makes n appends from writers goroutines, each on its own
// stream, the i-th of a writer at version i.
func runWritersN(b *testing.B, writers, n int, appendAt func(ctx context.Context, stream string, version int64) error) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("peer-%d", w)
			for v := int64(0); next.Add(1) <= int64(n); v++ {
				if err := appendAt(ctx, stream, v); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

func dropSchema(tb testing.TB, schema string) {
	conn, err := pgx.Connect(context.Background(), pgURL(tb))
	if err != nil {
		tb.Error(err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
		tb.Error(err)
	}
}

// openPGStore opens Strata's PostgreSQL store in a schema of its own,
// dropped when the benchmark ends.
func openPGStore(b *testing.B, conns int) *pgstore.Store {
	schema := fmt.Sprintf("strata_peer_bench_%d", os.Getpid())
	st, err := pgstore.Open(context.Background(), pgURL(b), pgstore.Options{Schema: schema, MaxConns: int32(min(conns, 16))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		st.Close()
		dropSchema(b, schema)
	})
	return st
}

// openNaive opens the naive table, dropped when the benchmark ends.
func openNaive(b *testing.B, conns int) *NaivePG {
	ctx := context.Background()
	pg, err := OpenNaivePG(ctx, pgURL(b), fmt.Sprintf("strata_peer_bench_%d", os.Getpid()), int32(min(conns, 16)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close(ctx) })
	return pg
}

// peerBatch is how many events one batched append carries.
const peerBatch = 100

// BenchmarkPeersBatch is BenchmarkPeers with peerBatch events an append
// (b.N counts events).
func BenchmarkPeersBatch(b *testing.B) {
	writers := *peerWriters
	evs := make([]event.Event, peerBatch)
	for i := range evs {
		evs[i] = event.Event{Type: "payment.authorized", Data: payload}
	}
	appends := func(b *testing.B, do func(ctx context.Context, stream string, v int64) error) {
		n := (b.N + peerBatch - 1) / peerBatch
		runWritersN(b, writers, n, func(ctx context.Context, stream string, i int64) error { return do(ctx, stream, i*peerBatch) })
		b.ReportMetric(float64(n*peerBatch)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("strata", func(b *testing.B) {
		l, err := eventlog.Open(b.TempDir(), eventlog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		appends(b, func(ctx context.Context, stream string, v int64) error {
			_, err := l.Append(ctx, stream, store.Exactly(uint64(v)), evs...)
			return err
		})
	})
	b.Run("pgstore", func(b *testing.B) {
		st := openPGStore(b, writers)
		appends(b, func(ctx context.Context, stream string, v int64) error {
			_, err := st.Append(ctx, stream, store.Exactly(uint64(v)), evs...)
			return err
		})
	})
	b.Run("postgres-naive", func(b *testing.B) {
		pg := openNaive(b, writers)
		appends(b, func(ctx context.Context, stream string, v int64) error {
			return pg.AppendBatch(ctx, stream, v, "payment.authorized", payload, peerBatch)
		})
	})
}

// BenchmarkPeersReadAll reads the whole log once, b.N events written
// beforehand (in batches, untimed), in position order.
func BenchmarkPeersReadAll(b *testing.B) {
	ctx := context.Background()
	evs := make([]event.Event, peerBatch)
	for i := range evs {
		evs[i] = event.Event{Type: "payment.authorized", Data: payload}
	}
	fill := func(b *testing.B, st store.Store) {
		for i := 0; i < b.N; i += peerBatch {
			if _, err := st.Append(ctx, fmt.Sprint("peer-", i/peerBatch%100), store.Any, evs[:min(peerBatch, b.N-i)]...); err != nil {
				b.Fatal(err)
			}
		}
	}
	scan := func(b *testing.B, st store.Store) {
		b.ResetTimer()
		n := 0
		for _, err := range st.ReadAll(ctx, store.ReadAllOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.StopTimer()
		if n != b.N {
			b.Fatalf("read %d events, want %d", n, b.N)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("strata", func(b *testing.B) {
		l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		fill(b, l)
		scan(b, l)
	})
	b.Run("pgstore", func(b *testing.B) {
		st := openPGStore(b, 4)
		fill(b, st)
		scan(b, st)
	})
	b.Run("postgres-naive", func(b *testing.B) {
		pg := openNaive(b, 4)
		for i := 0; i < b.N; i += peerBatch {
			if err := pg.AppendBatch(ctx, fmt.Sprint("peer-", i), 0, "payment.authorized", payload, min(peerBatch, b.N-i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		n := 0
		if err := pg.ReadAll(ctx, func(int64, []byte) { n++ }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n != b.N {
			b.Fatalf("read %d events, want %d", n, b.N)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkPeersNodes is BenchmarkPeers' pgstore workload spread over
// several stores on one schema, as several Strata nodes on one database
// would run it: each writer appends through one of them, in turn.
func BenchmarkPeersNodes(b *testing.B) {
	writers := *peerWriters
	for _, nodes := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			schema := fmt.Sprintf("strata_peer_nodes_%d", os.Getpid())
			var sts []*pgstore.Store
			for range nodes {
				st, err := pgstore.Open(context.Background(), pgURL(b), pgstore.Options{Schema: schema, MaxConns: int32(max(4, min(writers, 16)/nodes))})
				if err != nil {
					b.Fatal(err)
				}
				sts = append(sts, st)
			}
			b.Cleanup(func() {
				for _, st := range sts {
					st.Close()
				}
				dropSchema(b, schema)
			})
			var turn atomic.Int64
			byStream := sync.Map{}
			runWriters(b, writers, func(ctx context.Context, stream string, v int64) error {
				st, ok := byStream.Load(stream)
				if !ok {
					st, _ = byStream.LoadOrStore(stream, sts[int(turn.Add(1))%nodes])
				}
				_, err := st.(*pgstore.Store).Append(ctx, stream, store.Exactly(uint64(v)), event.Event{Type: "payment.authorized", Data: payload})
				return err
			})
		})
	}
}
