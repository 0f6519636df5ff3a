package rules

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/num"
)

// go test ./rules -run '^$' -bench . -benchtime 2000000x
//
// BenchmarkDecide: the reference rules deciding about transactions of
// -rule-users users, 100 µs apart in event time, on one goroutine: the
// windows probed, both conditions evaluated, the transaction counted, as
// Authorize does, without the append. BenchmarkAuthorize: the whole call,
// durable append included (fdatasync, group commit), from 64 goroutines,
// with latency percentiles.

var ruleUsers = flag.Int("rule-users", 1_000_000, "users in the rules benchmarks")

func benchTxns(n, users int) []Transaction {
	txns := make([]Transaction, n)
	x := uint64(88172645463325252)
	at := t0
	for i := range txns {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		at = at.Add(time.Duration(x%200) * time.Microsecond)
		txns[i] = Transaction{ID: event.NewID(), User: fmt.Sprint("user-", x%uint64(users)), Amount: num.FromMicro(int64(x>>40) % 300_000_000), At: at.Truncate(time.Millisecond)}
	}
	return txns
}

func BenchmarkDecide(b *testing.B) {
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	// One shard: one goroutine decides, as on one core.
	a, err := Open(context.Background(), l, Options{Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	warm := 3_000_000 // 5 minutes of transactions: the windows are full
	txns := benchTxns(warm+b.N, *ruleUsers)
	denied := 0
	step := func(txn *Transaction) {
		locked := a.lock(txn)
		d, err := a.decide(txn)
		if err != nil {
			b.Fatal(err)
		}
		if d.Outcome == Deny {
			denied++
		}
		if err := a.apply(txn, d, locked); err != nil {
			b.Fatal(err)
		}
		a.unlock(locked)
	}
	for i := range warm {
		step(&txns[i])
	}
	b.ResetTimer()
	for i := range b.N {
		step(&txns[warm+i])
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
	b.ReportMetric(float64(denied)/float64(warm+b.N), "denied/txn")
}

func BenchmarkAuthorize(b *testing.B) {
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncAlways})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	a, err := Open(context.Background(), l, Options{})
	if err != nil {
		b.Fatal(err)
	}
	txns := benchTxns(b.N, *ruleUsers)
	const callers = 64
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < b.N; i += callers {
				start := time.Now()
				if _, err := a.Authorize(context.Background(), txns[i]); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}
