package bank_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/aggregate/aggregatetest"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples/bank"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func eventsEqual(a, b bank.Event) bool {
	switch a := a.(type) {
	case bank.Deposited:
		b, ok := b.(bank.Deposited)
		return ok && a.Amount.Equal(b.Amount)
	case bank.Withdrew:
		b, ok := b.(bank.Withdrew)
		return ok && a.Amount.Equal(b.Amount)
	case bank.AccountOpened:
		b, ok := b.(bank.AccountOpened)
		return ok && a.Owner == b.Owner && a.Initial.Equal(b.Initial)
	}
	return false
}

func TestDecide(t *testing.T) {
	acct := func() *aggregatetest.Scenario[bank.Account, bank.Command, bank.Event] {
		return aggregatetest.For(bank.Decider).Equal(eventsEqual)
	}
	opened := bank.AccountOpened{Owner: "ada", Initial: d("0")}
	acct().When(bank.Open{Owner: "ada"}).Then(t, opened)
	acct().Given(opened).When(bank.Open{Owner: "bob"}).ThenError(t, bank.ErrAlreadyOpen)
	acct().When(bank.Deposit{Amount: d("1")}).ThenError(t, bank.ErrNotOpen)
	acct().Given(opened).When(bank.Deposit{Amount: d("500")}).Then(t, bank.Deposited{Amount: d("500")})
	acct().Given(opened).When(bank.Deposit{Amount: d("0")}).ThenError(t, bank.ErrInvalidAmount)
	acct().Given(opened).When(bank.Withdraw{Amount: d("-5")}).ThenError(t, bank.ErrInvalidAmount)
	acct().Given(opened, bank.Deposited{Amount: d("100")}).When(bank.Withdraw{Amount: d("100.01")}).ThenError(t, bank.ErrOverdraft)
	acct().Given(opened, bank.Deposited{Amount: d("100")}).When(bank.Withdraw{Amount: d("100")}).Then(t, bank.Withdrew{Amount: d("100")})
}

// The reference account of the issue: $0, +$500, -$200, +$947.53 is exactly
// $1,247.53, through the log and back.
func TestReferenceAccountBalance(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg := event.NewRegistry()
	if err := bank.Register(reg); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository(l, reg, bank.Decider, aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []bank.Command{
		bank.Open{Owner: "ada", Initial: d("0")},
		bank.Deposit{Amount: d("500")},
		bank.Withdraw{Amount: d("200")},
		bank.Deposit{Amount: d("947.53")},
	} {
		if _, err := repo.Handle(ctx, "ref", c); err != nil {
			t.Fatalf("%#v: %v", c, err)
		}
	}
	if _, err := repo.Handle(ctx, "ref", bank.Withdraw{Amount: d("1247.54")}); !errors.Is(err, bank.ErrOverdraft) {
		t.Fatalf("overdraft: %v", err)
	}
	acct, version, err := repo.Load(ctx, "ref")
	if err != nil {
		t.Fatal(err)
	}
	if !acct.Balance.Equal(d("1247.53")) || acct.Balance.StringFixed(2) != "1247.53" || version != 4 {
		t.Fatalf("balance %s at version %d, want exactly 1247.53 at 4", acct.Balance, version)
	}
}

func TestMoneyRoundTripsThroughJSONExactly(t *testing.T) {
	reg := event.NewRegistry()
	bank.Register(reg)
	for _, s := range []string{"0.1", "947.53", "12345678901234567890.000000001", "-0.00"} {
		e, err := reg.Encode(bank.Deposited{Amount: d(s)})
		if err != nil {
			t.Fatal(err)
		}
		back, err := reg.Decode(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := back.(bank.Deposited).Amount; !got.Equal(d(s)) || got.String() != d(s).String() {
			t.Fatalf("%s came back as %s (JSON %s)", s, got, e.Data)
		}
	}
	// A JSON number is read exactly too, never through float64.
	v, err := reg.Decode(&event.Event{Type: "bank.deposited", Data: []byte(`{"amount":0.30000000000000004441}`)})
	if err != nil || v.(bank.Deposited).Amount.String() != "0.30000000000000004441" {
		t.Fatalf("number amount = %v, %v", v, err)
	}
}
