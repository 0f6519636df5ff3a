package bank_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples/bank"
	"github.com/stratadb/strata/store"
)

// fillAccount appends an opened account and n-1 deposits of $1.01, in
// large batches, with record times from clock (nil: the log's own).
func fillAccount(b *testing.B, l *eventlog.Log, reg *event.Registry, id string, n int, at func(i int) time.Time) {
	b.Helper()
	ctx := context.Background()
	opened, _ := reg.Encode(bank.AccountOpened{Owner: "bench", Initial: decimal.Zero})
	dep, _ := reg.Encode(bank.Deposited{Amount: decimal.RequireFromString("1.01")})
	batch := []event.Event{opened}
	for i := 1; i <= n; i++ {
		if i < n {
			batch = append(batch, dep)
		}
		if len(batch) == 1000 || i == n {
			if _, err := l.Append(ctx, bank.Decider.Stream(id), store.Any, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

func benchRegistry(b *testing.B) *event.Registry {
	reg := event.NewRegistry()
	if err := bank.Register(reg); err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkLoadAccount loads an account of 1,000,000 events from a replay
// and from a snapshot taken 999 events before the end (the worst case of
// snapshots every 1,000 events).
func BenchmarkLoadAccount(b *testing.B) {
	const n = 1_000_000
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	snaps, err := aggregate.OpenSnapshots(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer snaps.Close()
	reg := benchRegistry(b)
	fillAccount(b, l, reg, "big", n-999, nil)
	repo, _ := aggregate.NewRepository(l, reg, bank.Decider, aggregate.Options{Snapshots: snaps})
	if _, err := repo.Snapshot(context.Background(), "big"); err != nil {
		b.Fatal(err)
	}
	// 999 more events after the snapshot.
	dep, _ := reg.Encode(bank.Deposited{Amount: decimal.RequireFromString("1.01")})
	more := make([]event.Event, 999)
	for i := range more {
		more[i] = dep
	}
	if _, err := l.Append(context.Background(), "account-big", store.Any, more...); err != nil {
		b.Fatal(err)
	}
	want := decimal.RequireFromString("1.01").Mul(decimal.NewFromInt(n - 1))
	for _, tc := range []struct {
		name string
		opts aggregate.Options
	}{{"replay", aggregate.Options{}}, {"snapshot", aggregate.Options{Snapshots: snaps}}} {
		b.Run(tc.name, func(b *testing.B) {
			repo, _ := aggregate.NewRepository(l, reg, bank.Decider, tc.opts)
			for range b.N {
				acct, v, err := repo.Load(context.Background(), "big")
				if err != nil || v != n || !acct.Balance.Equal(want) {
					b.Fatalf("load = %s@%d, %v", acct.Balance, v, err)
				}
			}
		})
	}
}

// BenchmarkSampleBalance computes the balance at every second of 7 days of
// an account with 10,000 transactions a day (604,800 samples, 70,000
// events) in one pass.
func BenchmarkSampleBalance(b *testing.B) {
	const perDay, days = 10_000, 7
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	every := 24 * time.Hour / perDay
	clock := func() time.Time { return start.Add(time.Duration(i) * every) }
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	reg := benchRegistry(b)
	dep, _ := reg.Encode(bank.Deposited{Amount: decimal.RequireFromString("1.01")})
	opened, _ := reg.Encode(bank.AccountOpened{Owner: "bench"})
	ctx := context.Background()
	for ; i < perDay*days; i++ {
		e := dep
		if i == 0 {
			e = opened
		}
		if _, err := l.Append(ctx, "account-busy", store.Any, e); err != nil {
			b.Fatal(err)
		}
	}
	repo, _ := aggregate.NewRepository(l, reg, bank.Decider, aggregate.Options{})
	// The same events sampled every second and every minute: the cost
	// follows the events folded, the samples only add their own output.
	for _, step := range []time.Duration{time.Second, time.Minute} {
		b.Run(fmt.Sprintf("every=%v", step), func(b *testing.B) {
			var samples int
			for range b.N {
				samples = 0
				for _, err := range repo.Samples(ctx, "busy", start, start.Add(days*24*time.Hour), step) {
					if err != nil {
						b.Fatal(err)
					}
					samples++
				}
			}
			b.StopTimer()
			if want := int(days * 24 * time.Hour / step); samples != want {
				b.Fatalf("%d samples, want %d", samples, want)
			}
			b.ReportMetric(float64(samples), "samples")
			b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
