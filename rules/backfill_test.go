package rules

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
	"pgregory.net/rapid"
)

// ruleChanges are the changes the backfill property draws from: new
// windows of every kind and key, and changes that keep the windows.
var ruleChanges = []Rule{
	{Name: "merchant_burst", Key: "merchant", Window: &Window{Type: "lookback", Size: Duration(2 * time.Minute)}, Condition: "count > 3", Action: Deny},
	{Name: "hourly", Key: "user_id", Window: &Window{Type: "sliding", Size: Duration(10 * time.Minute), Slide: Duration(2 * time.Minute)}, Condition: "sum(amount) > 300", Action: Review},
	{Name: "five_minutes", Key: "user_id", Window: &Window{Type: "tumbling", Size: Duration(5 * time.Minute)}, Condition: "count > 4", Action: Deny},
	{Name: "session", Key: "user_id", Window: &Window{Type: "session", Size: Duration(10 * time.Minute), Gap: Duration(time.Minute)}, Condition: "count > 5", Action: Review, CountDenied: true},
	{Name: "elsewhere", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(5 * time.Minute)}, Condition: `sum(merchant != "m0" ? amount : 0.0) > 200 || count(merchant == "m0") > 2`, Action: Review},
	{Name: "shops", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(30 * time.Second)}, Condition: "distinct(merchant) > 2", Action: Deny},
	{Name: "velocity", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(60 * time.Second)}, Condition: "count > 3", Action: Deny}, // the default's windows, a lower threshold
	{Name: "large_spend", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(5 * time.Minute)}, Condition: "sum(amount) > 5000", Action: Deny, Disabled: true},
}

// A rule change replays only the history its new windows reach back over,
// and keeps the windows that did not change; the decisions after it are
// those of an authorizer that replays the whole log with the new rules.
// Traffic comes late within the lateness and beyond it.
func TestBackfillDecidesAsAFullReplay(t *testing.T) {
	withMarksEvery(t, 8)
	ctx := context.Background()
	opts := Options{Shards: 4, Lateness: 30 * time.Second}
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "backfill")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		la := openRapidLog(rt, dir+"/a")
		defer la.Close()
		a, err := Open(ctx, la, opts)
		if err != nil {
			rt.Fatal(err)
		}
		at := t0
		next := func(i int) Transaction {
			latest := at
			switch rapid.IntRange(0, 29).Draw(rt, fmt.Sprint("kind", i)) {
			case 0, 1, 2: // late, within the lateness
				latest = at.Add(-time.Duration(rapid.IntRange(0, 25_000).Draw(rt, fmt.Sprint("late", i))) * time.Millisecond)
			case 3: // later than the lateness
				latest = at.Add(-time.Duration(rapid.IntRange(40, 600).Draw(rt, fmt.Sprint("later", i))) * time.Second)
			default:
				at = at.Add(time.Duration(rapid.IntRange(0, 20_000).Draw(rt, fmt.Sprint("step", i))) * time.Millisecond)
				latest = at
			}
			return Transaction{ID: event.NewID(), User: fmt.Sprint("u", rapid.IntRange(0, 4).Draw(rt, fmt.Sprint("user", i))),
				Merchant: fmt.Sprint("m", rapid.IntRange(0, 2).Draw(rt, fmt.Sprint("merchant", i))),
				Amount:   dec(fmt.Sprint(rapid.IntRange(1, 200).Draw(rt, fmt.Sprint("amount", i)))), At: latest}
		}
		before := rapid.IntRange(50, 300).Draw(rt, "before")
		for i := range before {
			if _, err := a.Authorize(ctx, next(i)); err != nil {
				rt.Fatal(err)
			}
		}
		var change []Rule
		for i, r := range ruleChanges {
			if rapid.Bool().Draw(rt, fmt.Sprint("change", i)) {
				change = append(change, r)
			}
		}
		if len(change) == 0 {
			change = ruleChanges[:1]
		}
		if err := a.Apply(ctx, "test", change...); err != nil {
			rt.Fatal(err)
		}
		lb := openRapidLog(rt, dir+"/b")
		defer lb.Close()
		copyLog(rt, la, lb)
		b, err := Open(ctx, lb, opts)
		if err != nil {
			rt.Fatal(err)
		}
		for i := range rapid.IntRange(20, 100).Draw(rt, "after") {
			txn := next(before + i)
			da, err := a.Authorize(ctx, txn)
			if err != nil {
				rt.Fatal(err)
			}
			db, err := b.Authorize(ctx, txn)
			if err != nil {
				rt.Fatal(err)
			}
			if ga, gb := decided(da), decided(db); ga != gb {
				rt.Fatalf("transaction %d after the change (%s at %v), backfilled: %s\nreplayed whole: %s", i, txn.User, txn.At.Sub(t0), ga, gb)
			}
		}
	})
}

// decided is what a decision says, for comparing two.
func decided(d Decision) string {
	s := fmt.Sprintf("%s %s", d.Outcome, fired(d))
	for _, am := range d.Amendments {
		s += fmt.Sprintf(" amends %v: %s→%s", am.At.Sub(t0), am.Previous, am.Outcome)
	}
	return s
}

func openRapidLog(rt *rapid.T, dir string) *eventlog.Log {
	l, err := eventlog.Open(dir, eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		rt.Fatal(err)
	}
	return l
}

// copyLog appends every record of from to the empty to, in order: the same
// positions.
func copyLog(t interface{ Fatal(...any) }, from, to store.Store) {
	ctx := context.Background()
	for rec, err := range from.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		res, err := to.Append(ctx, rec.Stream, store.Any, rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstPosition != rec.Position {
			t.Fatal(fmt.Sprintf("copied %d to %d", rec.Position, res.FirstPosition))
		}
	}
}

// withMarksEvery takes marks every n decisions for the test: finer than
// the default, so that a short history has some to start a backfill from.
func withMarksEvery(t testing.TB, n int) {
	old := markEvery
	markEvery = n
	t.Cleanup(func() { markEvery = old })
}

// openWith opens a log in dir and an Authorizer with opts on it.
func openWith(t testing.TB, dir string, opts Options) (*eventlog.Log, *Authorizer) {
	t.Helper()
	l := openLog(t, dir)
	a, err := Open(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, a
}

// replayedWhole opens, on a copy of the log from in dir, an Authorizer that
// builds its windows by replaying the whole log: the reference a backfill
// must agree with.
func replayedWhole(t testing.TB, from store.Store, dir string, opts Options) *Authorizer {
	t.Helper()
	l := openLog(t, dir)
	copyLog(t, from, l)
	b, err := Open(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decideBoth has a and b decide txn, and fails unless they agree.
func decideBoth(t testing.TB, a, b *Authorizer, txn Transaction) Decision {
	t.Helper()
	da, err := a.Authorize(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Authorize(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	if decided(da) != decided(db) {
		t.Fatalf("%s at %v: backfilled %s, replayed whole %s", txn.User, txn.At.Sub(t0), decided(da), decided(db))
	}
	return da
}

// Two hours of history, and a rule with a one-minute window: the backfill
// reads the last minute and the lateness (and the marks' step), not the
// two hours (the rule's max over amounts is a window of its own). A change
// of threshold keeps the windows and reads nothing.
func TestBackfillReadsTheWindowOnly(t *testing.T) {
	ctx := context.Background()
	a := openAuth(t, openLog(t, t.TempDir()))
	for i := range 7200 {
		authorize(t, a, fmt.Sprint("u", i%50), "1", t0.Add(time.Duration(i)*time.Second))
	}
	at := t0.Add(7199 * time.Second)
	r := Rule{Name: "quick", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "max(amount) > 1", Action: Deny}
	if err := a.Apply(ctx, "test", r); err != nil {
		t.Fatal(err)
	}
	bf := a.LastBackfill()
	// 60 s of window, 60 s of lateness, one mark's step (256 decisions).
	if bf.Windows != 1 || bf.Transactions < 120 || bf.Transactions > 120+markEvery+1 {
		t.Fatalf("backfill %+v: want 1 new window group, 120 to %d transactions", bf, 120+markEvery+1)
	}
	if d := authorize(t, a, "u49", "2", at); d.Outcome != Deny || fired(d) != "quick(max(amount)=2)" {
		t.Fatalf("first decision after the change: %s %s, want deny quick(max(amount)=2)", d.Outcome, fired(d))
	}
	r.Condition = "max(amount) > 5"
	if err := a.Apply(ctx, "test", r); err != nil {
		t.Fatal(err)
	}
	if bf := a.LastBackfill(); bf.Windows != 0 || bf.Transactions != 0 {
		t.Fatalf("a new threshold backfilled %+v, want nothing", bf)
	}
	if d := authorize(t, a, "u49", "1", at); d.Outcome != Approve {
		t.Fatalf("after the threshold change: %s %s, want approve", d.Outcome, fired(d))
	}
}

// A transaction later than the lateness reads only what every build of the
// windows keeps. Here a whole-log replay still holds x's old transactions
// (x's shard is not touched again, so nothing evicts them) and a backfill
// never read them: both must decide the same.
func TestTooLateReadsTheSameInEveryBuild(t *testing.T) {
	withMarksEvery(t, 8)
	ctx := context.Background()
	opts := Options{Shards: 256, Lateness: 30 * time.Second}
	dir := t.TempDir()
	la, a := openWith(t, dir+"/a", opts)
	other := "y"
	for shardOf(other, 256) == shardOf("x", 256) {
		other += "y"
	}
	for i := range 3 {
		if _, err := a.Authorize(ctx, Transaction{User: "x", Amount: dec("1"), At: t0.Add(time.Duration(i) * 10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 120 {
		if _, err := a.Authorize(ctx, Transaction{User: other, Amount: dec("1"), At: t0.Add(30*time.Second + time.Duration(i)*10*time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	r := Rule{Name: "ten_minutes", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(10 * time.Minute)}, Condition: "count > 2", Action: Deny}
	if err := a.Apply(ctx, "test", r); err != nil {
		t.Fatal(err)
	}
	if bf := a.LastBackfill(); bf.After == 0 {
		t.Fatalf("backfill %+v: read the whole log", bf)
	}
	b := replayedWhole(t, la, dir+"/b", opts)
	d := decideBoth(t, a, b, Transaction{ID: event.NewID(), User: "x", Amount: dec("1"), At: t0.Add(5 * time.Minute)})
	if d.Outcome != Approve {
		t.Fatalf("a transaction 15 minutes late: %s; want approve (the windows keep nothing that old)", decided(d))
	}
}

// A rule change fills its windows while decisions go on: those made during
// the replay off to the side are read when decisions are held, and the
// decisions after the change are those of a whole-log replay.
func TestRuleChangeDuringTraffic(t *testing.T) {
	withMarksEvery(t, 8)
	ctx := context.Background()
	opts := Options{Shards: 16, Lateness: 30 * time.Second}
	dir := t.TempDir()
	la, a := openWith(t, dir+"/a", opts)
	pay := func(a *Authorizer, user string, i int, at time.Time) Decision {
		d, err := a.Authorize(ctx, Transaction{ID: event.NewID(), User: user, Merchant: fmt.Sprint("m", i%5), Amount: dec(fmt.Sprint(1 + i%97)), At: at})
		if err != nil {
			t.Error(err)
		}
		return d
	}
	for i := range 2000 {
		pay(a, fmt.Sprint("u", i%20), i, t0.Add(time.Duration(i)*time.Second))
	}
	end := t0.Add(2000 * time.Second)
	var made atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// One clock for all: nearly in order, never near the lateness.
				pay(a, fmt.Sprint("u", w*5+i%5), i, end.Add(time.Duration(made.Add(1))*100*time.Millisecond))
			}
		}()
	}
	afterFill = func() {
		// Decisions go on during the replay; these come after it.
		for n := made.Load() + 50; made.Load() < n; {
			runtime.Gosched()
		}
	}
	defer func() { afterFill = nil }()
	err := a.Apply(ctx, "test", ruleChanges[0], ruleChanges[1])
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if bf := a.LastBackfill(); bf.After == 0 || bf.Windows != 2 {
		t.Fatalf("backfill %+v: want two new window groups, from a mark", bf)
	}
	b := replayedWhole(t, la, dir+"/b", opts)
	at := end.Add(time.Duration(made.Load()) * 100 * time.Millisecond)
	for i := range 300 {
		decideBoth(t, a, b, Transaction{ID: event.NewID(), User: fmt.Sprint("u", i%20), Merchant: fmt.Sprint("m", i%5), Amount: dec(fmt.Sprint(1 + i%97)), At: at.Add(time.Duration(i) * 50 * time.Millisecond)})
	}
}
