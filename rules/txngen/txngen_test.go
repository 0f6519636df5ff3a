package txngen

import (
	"context"
	"testing"
	"time"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/rules"
)

// Every planted episode is caught and no ordinary transaction is flagged:
// exact, since the rules are exact and ordinary users break none.
func TestDetectionIsExact(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	a, err := rules.Open(ctx, l, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Users: 400, Rate: 30, FraudRatio: 0.05, Duration: 10 * time.Minute, Seed: 1}
	var decisions []rules.Decision
	var failed error
	episodes, err := Generate(opts, func(txn rules.Transaction) bool {
		d, err := a.Authorize(ctx, txn)
		if err != nil {
			failed = err
			return false
		}
		decisions = append(decisions, d)
		return true
	})
	if err != nil || failed != nil {
		t.Fatal(err, failed)
	}
	sc := NewScorer(episodes)
	for _, d := range decisions {
		sc.Add(d)
	}
	s := sc.Score()
	t.Logf("score %+v", s)
	if s.Episodes != 20 || s.Caught != s.Episodes || s.Flagged != 0 || s.Ordinary < 10_000 {
		t.Fatalf("score %+v", s)
	}
	// The reference burst (fraud-0, 55 s to 65 s) is denied at its 11th.
	var burst []rules.Decision
	for _, d := range decisions {
		if d.User == "fraud-0" {
			burst = append(burst, d)
		}
	}
	if len(burst) != 11 || burst[9].Outcome != rules.Approve || burst[10].Outcome != rules.Deny || burst[10].Fired[0].Rule != "velocity" ||
		burst[0].At.Sub(opts.Start.Add(0)) < 0 {
		t.Fatalf("reference burst: %+v", burst)
	}
}

func TestDeterministic(t *testing.T) {
	opts := Options{Users: 50, Rate: 5, FraudRatio: 0.1, Duration: 3 * time.Minute, Seed: 7}
	var a, b []rules.Transaction
	episodes, _ := Generate(opts, func(x rules.Transaction) bool { a = append(a, x); return true })
	Generate(opts, func(x rules.Transaction) bool { b = append(b, x); return true })
	// Every planted transaction comes out, those of episodes that run on
	// past the end too.
	got := map[string]bool{}
	for _, x := range a {
		got[x.ID.String()] = true
	}
	for _, ep := range episodes {
		for _, id := range ep.Transactions {
			if !got[id.String()] {
				t.Fatalf("episode %s: transaction %s not generated", ep.User, id)
			}
		}
	}
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d transactions", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || !a[i].At.Equal(b[i].At) || a[i].Amount.Cmp(b[i].Amount) != 0 {
			t.Fatalf("transaction %d differs: %+v %+v", i, a[i], b[i])
		}
		if i > 0 && a[i].At.Before(a[i-1].At) {
			t.Fatalf("transaction %d out of time order", i)
		}
	}
	if _, err := Generate(Options{Users: 0, Rate: 1, Duration: time.Hour}, nil); err == nil {
		t.Fatal("0 users accepted")
	}
}
