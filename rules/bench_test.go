package rules

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
)

// go test ./rules -run '^$' -bench . -benchtime 2000000x
//
// BenchmarkDecide: the reference rules deciding about transactions of
// -rule-users users, 100 µs apart in event time, on one goroutine: the
// windows probed, both conditions evaluated, the transaction counted, as
// Authorize does, without the append. BenchmarkAuthorize: the whole call,
// durable append included (fdatasync, group commit), from 64 goroutines,
// with latency percentiles.

var (
	ruleUsers     = flag.Int("rule-users", 1_000_000, "users in the rules benchmarks")
	authShards    = flag.Int("auth-shards", 0, "the Authorizer's shards in BenchmarkAuthorize (0: the default)")
	authHeld      = flag.Bool("auth-held", false, "BenchmarkAuthorize: hide the log's Enqueue, so that decisions hold their shards through the fsync")
	authRate      = flag.Float64("auth-rate", 0, "BenchmarkAuthorize: calls per second, started on a schedule (0: 64 callers as fast as they can)")
	changeHistory = flag.Int("change-history", 600_000, "BenchmarkRuleChange: transactions recorded before the changes")
	ruleStamp     = flag.Bool("rule-stamp", false, "BenchmarkAuthorize: leave each transaction's time for Authorize to stamp when it is called, as a live system receives them (out of order only by the callers' own race), instead of the generator's pre-ordered times")
	ruleMerchants = flag.Int("rule-merchants", 0, "BenchmarkAuthorize: transactions at this many merchants, with a merchant-keyed rule beside the reference rules (0: no merchant)")
)

// txnGen is a deterministic stream of transactions: users drawn
// uniformly, event time advancing 100 µs per transaction on average,
// amounts up to $300.
type txnGen struct {
	x     uint64
	at    time.Time
	users []string
	gap   uint64 // µs: event time advances by up to this (200 µs)
}

func newTxnGen(users int) *txnGen {
	g := &txnGen{x: 88172645463325252, at: t0, users: make([]string, users), gap: 200}
	for i := range g.users {
		g.users[i] = fmt.Sprint("user-", i)
	}
	return g
}

func (g *txnGen) next(txn *Transaction) {
	g.x ^= g.x << 13
	g.x ^= g.x >> 7
	g.x ^= g.x << 17
	g.at = g.at.Add(time.Duration(g.x%g.gap) * time.Microsecond)
	*txn = Transaction{User: g.users[g.x%uint64(len(g.users))], Amount: num.FromMicro(int64(g.x>>40) % 300_000_000), At: g.at.Truncate(time.Millisecond)}
}

// BenchmarkDecide: the reference rules through the Authorizer's decision
// (windows probed, conditions evaluated, the transaction counted unless
// denied), against a hand-written per-user deque that knows only those two
// rules, in the same run.
// benchAuthorizerDecide times the Authorizer's decisions, with the
// reference rules and extra beside them, on one shard: one goroutine
// decides, as on one core.
func benchAuthorizerDecide(b *testing.B, warm int, extra ...Rule) {
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	a, err := Open(context.Background(), l, Options{Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	if len(extra) > 0 {
		if err := a.Apply(context.Background(), "bench", extra...); err != nil {
			b.Fatal(err)
		}
	}
	decideAll(b, warm, func(txn *Transaction) bool {
		var h held
		a.lock(txn, &h)
		defer a.unlock(&h)
		d, err := a.decide(txn, &h)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.apply(txn, d, &h); err != nil {
			b.Fatal(err)
		}
		return d.Outcome == Deny
	})
}

func BenchmarkDecide(b *testing.B) {
	const warm = 3_000_000 // 5 minutes of transactions: the windows are full
	b.Run("authorizer", func(b *testing.B) { benchAuthorizerDecide(b, warm) })
	// The reference rules and a session rule beside them: what a session
	// window adds (its start found by walking back through the user's
	// transactions).
	b.Run("authorizer+session", func(b *testing.B) {
		benchAuthorizerDecide(b, warm, Rule{Name: "session_burst", Key: "user_id",
			Window:    &Window{Type: "session", Size: Duration(time.Hour), Gap: Duration(5 * time.Minute)},
			Condition: "count > 20", Action: Review})
	})
	b.Run("hand-written", func(b *testing.B) {
		type user struct {
			ts  []int64
			amt []num.Dec
			n1  int // transactions in the last 60 s are ts[len-n1:]
			sum num.Dec
		}
		users := map[string]*user{}
		limit := num.FromInt(5000)
		decideAll(b, warm, func(txn *Transaction) bool {
			u := users[txn.User]
			if u == nil {
				u = &user{}
				users[txn.User] = u
			}
			t := millis(txn.At)
			drop := 0
			for drop < len(u.ts) && u.ts[drop] <= t-300_000 {
				u.sum = u.sum.Sub(u.amt[drop])
				drop++
			}
			u.ts, u.amt = u.ts[drop:], u.amt[drop:]
			u.n1 = min(u.n1, len(u.ts))
			for u.n1 > 0 && u.ts[len(u.ts)-u.n1] <= t-60_000 {
				u.n1--
			}
			if u.n1+1 > 10 || u.sum.Add(txn.Amount).Cmp(limit) > 0 {
				return true
			}
			u.ts, u.amt = append(u.ts, t), append(u.amt, txn.Amount)
			u.sum = u.sum.Add(txn.Amount)
			u.n1++
			return false
		})
	})
}

// decideAll decides warm generated transactions untimed, then b.N timed,
// every 16th on its own clock for the percentiles, and reports the rate,
// the latencies and the share denied (decide reports a denial).
func decideAll(b *testing.B, warm int, decide func(*Transaction) bool) {
	g := newTxnGen(*ruleUsers)
	var txn Transaction
	denied := 0
	step := func() {
		g.next(&txn)
		if decide(&txn) {
			denied++
		}
	}
	for range warm {
		step()
	}
	lat := make([]time.Duration, 0, b.N/16+1)
	b.ResetTimer()
	for i := range b.N {
		if i%16 == 0 {
			start := time.Now()
			step()
			lat = append(lat, time.Since(start))
			continue
		}
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
	b.ReportMetric(float64(denied)/float64(warm+b.N), "denied/txn")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
	b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds())/1000, "p99.9-µs")
}

// BenchmarkAuthorize: the whole call from 64 goroutines over a durable
// log (fsync before acknowledging, group commit), and, as the baseline in
// the same run, the same appends alone (a transaction and a decision of
// the same sizes, to the same streams), with no decision.
func BenchmarkAuthorize(b *testing.B) {
	b.Run("authorize", func(b *testing.B) {
		l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncAlways})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		var st store.Store = l
		if *authHeld {
			st = struct{ store.Store }{l}
		}
		a, err := Open(context.Background(), st, Options{Shards: *authShards})
		if err != nil {
			b.Fatal(err)
		}
		if *ruleMerchants > 0 {
			// A rule keyed by merchant: a transaction that comes behind
			// another at its merchant (64 callers take them out of order)
			// reads the log back for the merchant's later decisions.
			if err := a.Apply(context.Background(), "bench", Rule{Name: "merchant_burst", Key: "merchant",
				Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count > 100000", Action: Review}); err != nil {
				b.Fatal(err)
			}
		}
		concurrently(b, func(txn *Transaction) error {
			x := *txn
			if *ruleStamp {
				x.At = time.Time{}
			}
			_, err := a.Authorize(context.Background(), x)
			return err
		})
	})
	b.Run("append-only", func(b *testing.B) {
		l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncAlways})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		decision := []byte(`{"transaction_id":"01a22265-c331-7037-8f72-b5c99ac4ac84","user_id":"user-123456","at":"2026-11-28T12:10:00Z","outcome":"approve"}`)
		concurrently(b, func(txn *Transaction) error {
			data, err := json.Marshal(txn)
			if err != nil {
				return err
			}
			_, err = l.Append(context.Background(), StreamOf(txn.User), store.Any,
				event.Event{ID: txn.ID, Type: TypeTransaction, Data: data},
				event.Event{ID: decisionID(txn.ID), Type: TypeDecision, Data: decision})
			return err
		})
	})
}

// concurrently runs call over b.N generated transactions from 64
// goroutines and reports the rate and the latency percentiles. With
// -auth-rate the calls start on a fixed schedule instead (open loop).
func concurrently(b *testing.B, call func(*Transaction) error) {
	if *authRate > 0 {
		scheduled(b, *authRate, call)
		return
	}
	g := newTxnGen(*ruleUsers)
	txns := make([]Transaction, b.N)
	for i := range txns {
		g.next(&txns[i])
		txns[i].ID = event.NewID()
		if *ruleMerchants > 0 {
			txns[i].Merchant = g.users[(g.x>>20)%uint64(*ruleMerchants)]
		}
	}
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
				if err := call(&txns[i]); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	report(b, slices.Concat(lat...))
}

func report(b *testing.B, all []time.Duration) {
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}

// scheduled starts call i at i/rate seconds, each on a goroutine of a pool
// of 256. A call's latency counts from when its goroutine starts it: the
// schedule's own lateness is not the system's (a sleep here overshoots by
// up to a millisecond, then a burst of calls goes out together), and a
// stall of the system still shows, in the calls it holds up.
func scheduled(b *testing.B, rate float64, call func(*Transaction) error) {
	g := newTxnGen(*ruleUsers)
	txns := make([]Transaction, b.N)
	for i := range txns {
		g.next(&txns[i])
		txns[i].ID = event.NewID()
		if *ruleMerchants > 0 {
			txns[i].Merchant = g.users[(g.x>>20)%uint64(*ruleMerchants)]
		}
	}
	lat := make([]time.Duration, b.N)
	work := make(chan int, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	due := func(i int) time.Time { return start.Add(time.Duration(float64(i) / rate * float64(time.Second))) }
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				start := time.Now()
				if err := call(&txns[i]); err != nil {
					b.Error(err)
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	for i := range b.N {
		if d := time.Until(due(i)); d > 0 {
			time.Sleep(d)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	report(b, lat)
}

// BenchmarkRuleChange: a rule with a one-minute window added to -change-history
// transactions recorded over about 100 minutes (10 ms apart on average),
// backfilled over its span, against replaying the whole log into every
// window (what a rule change did before backfills read only their span),
// in the same run. Two rules of different spans take turns, so that every
// change has a new window to fill.
func BenchmarkRuleChange(b *testing.B) {
	ctx := context.Background()
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	a, err := Open(ctx, l, Options{})
	if err != nil {
		b.Fatal(err)
	}
	g := newTxnGen(*ruleUsers)
	g.gap = 20_000
	var txn Transaction
	for range *changeHistory {
		g.next(&txn)
		if _, err := a.Authorize(ctx, txn); err != nil {
			b.Fatal(err)
		}
	}
	turns := []Rule{
		{Name: "quick", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "max(amount) > 250", Action: Review},
		{Name: "quick", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(61 * time.Second)}, Condition: "max(amount) > 250", Action: Review},
	}
	b.Run("backfill", func(b *testing.B) {
		read := 0
		var held time.Duration
		for i := range b.N {
			if err := a.Apply(ctx, "bench", turns[i%2]); err != nil {
				b.Fatal(err)
			}
			read += a.LastBackfill().Transactions
			held += a.LastBackfill().Held
		}
		b.ReportMetric(float64(read)/float64(b.N), "txns-read/op")
		b.ReportMetric(float64(held.Microseconds())/float64(b.N), "held-µs/op")
	})
	b.Run("replay-all", func(b *testing.B) {
		for range b.N {
			if err := a.Reload(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(*changeHistory), "txns-read/op")
	})
}

// BenchmarkEvaluate: the reference rules' compiled conditions alone, on
// window values already read (no window, no append): what "compiled once,
// not interpreted per event" costs.
func BenchmarkEvaluate(b *testing.B) {
	set, err := NewSet(Default())
	if err != nil {
		b.Fatal(err)
	}
	a := &Authorizer{set: set}
	home := &shard{}
	vals := make([]num.Dec, len(set.terms.list))
	txn := &Transaction{User: "u1", Amount: num.FromInt(120)}
	fired := 0
	b.ResetTimer()
	for i := range b.N {
		// Counts from 0 to 15 and sums up to 6,000: some fire, most not.
		vals[0], vals[1] = num.FromInt(int64(i%16)), num.FromInt(int64(i%6001))
		if outcome, _ := a.evaluate(home, txn, vals, allKeys, nil); outcome != Approve {
			fired++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
	b.ReportMetric(float64(fired)/float64(b.N), "fired/txn")
}

// BenchmarkCheckpoint: writing the windows' checkpoint after -change-history
// transactions of -rule-users users; held-ms is the part that holds every
// decision back (the capture), the stall a decision may meet once every
// CheckpointEvery.
func BenchmarkCheckpoint(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	l, err := eventlog.Open(dir+"/log", eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	a, err := Open(ctx, l, Options{Dir: dir + "/rules", CheckpointEvery: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	g := newTxnGen(*ruleUsers)
	var txn Transaction
	for range *changeHistory {
		g.next(&txn)
		if _, err := a.Authorize(ctx, txn); err != nil {
			b.Fatal(err)
		}
	}
	var held time.Duration
	b.ResetTimer()
	for range b.N {
		// Checkpoint's steps, timed apart: decisions wait for the capture.
		start := time.Now()
		a.mu.Lock()
		cp, err := a.capture()
		a.mu.Unlock()
		held += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.save(cp); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(held.Milliseconds())/float64(b.N), "held-ms/op")
	if fi, err := os.Stat(dir + "/rules/authorizer.checkpoint"); err == nil {
		b.ReportMetric(float64(fi.Size())/1e6, "MB")
	}
}
