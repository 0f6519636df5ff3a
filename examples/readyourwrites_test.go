package examples_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/bank"
	"github.com/stratadb/strata/projection"
)

// Every command's own write is visible to a query that waits for the
// position the command returned.
func TestReadYourWrites(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	db, err := projection.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, _ := examples.New(l, nil)
	p, err := projection.ParseSpec(examples.AccountBalancesYAML)
	if err != nil {
		t.Fatal(err)
	}
	r := projection.NewRunner(p, db, l, projection.Options{Registry: cat.Registry})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if _, err := cat.Bank.Handle(ctx, "rw", bank.Open{Owner: "rw"}); err != nil {
		t.Fatal(err)
	}
	want := decimal.Zero
	for i := range 100 {
		amount := decimal.New(int64(i+1), -2)
		res, err := cat.Bank.Handle(ctx, "rw", bank.Deposit{Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		want = want.Add(amount)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		err = r.WaitFor(wctx, res.Position)
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.QueryRow(`SELECT balance FROM account_balances WHERE account = 'rw'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if g, _ := decimal.NewFromString(got); !g.Equal(want) {
			t.Fatalf("after deposit %d (position %d) the read model says %s, want %s", i, res.Position, got, want)
		}
	}
}
