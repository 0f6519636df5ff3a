// Package bank is the bank account example: open an account, deposit,
// withdraw, never overdraw. The balance is never stored: it is the fold of
// the account's events, in exact decimal money.
package bank

import (
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
)

// Domain errors: the commands the account refuses.
var (
	ErrNotOpen       = errors.New("bank: account is not open")
	ErrAlreadyOpen   = errors.New("bank: account is already open")
	ErrOverdraft     = errors.New("bank: insufficient funds")
	ErrInvalidAmount = errors.New("bank: amount must be positive")
)

// Events. Amounts are exact decimals, written to JSON as strings.
type (
	// Event is implemented by the account's events.
	Event interface{ isAccountEvent() }

	AccountOpened struct {
		Owner   string          `json:"owner"`
		Initial decimal.Decimal `json:"initial"`
	}
	Deposited struct {
		Amount decimal.Decimal `json:"amount"`
	}
	Withdrew struct {
		Amount decimal.Decimal `json:"amount"`
	}
)

func (AccountOpened) isAccountEvent() {}
func (Deposited) isAccountEvent()     {}
func (Withdrew) isAccountEvent()      {}

// Commands.
type (
	Command interface{ isAccountCommand() }

	Open struct {
		Owner   string
		Initial decimal.Decimal
	}
	Deposit  struct{ Amount decimal.Decimal }
	Withdraw struct{ Amount decimal.Decimal }
)

func (Open) isAccountCommand()     {}
func (Deposit) isAccountCommand()  {}
func (Withdraw) isAccountCommand() {}

// Account is the state.
type Account struct {
	Open    bool            `json:"open"`
	Owner   string          `json:"owner,omitempty"`
	Balance decimal.Decimal `json:"balance"`
}

// Decider folds and decides accounts: streams "account-<id>".
var Decider = aggregate.Decider[Account, Command, Event]{
	Category: "account",
	Version:  1,
	Evolve:   evolve,
	Decide:   decide,
}

func evolve(a Account, e Event) Account {
	switch e := e.(type) {
	case AccountOpened:
		a.Open, a.Owner, a.Balance = true, e.Owner, e.Initial
	case Deposited:
		a.Balance = a.Balance.Add(e.Amount)
	case Withdrew:
		a.Balance = a.Balance.Sub(e.Amount)
	}
	return a
}

func decide(a Account, c Command) ([]Event, error) {
	switch c := c.(type) {
	case Open:
		if a.Open {
			return nil, ErrAlreadyOpen
		}
		if c.Initial.IsNegative() {
			return nil, fmt.Errorf("%w: initial balance %s", ErrInvalidAmount, c.Initial)
		}
		return []Event{AccountOpened{Owner: c.Owner, Initial: c.Initial}}, nil
	case Deposit:
		if !a.Open {
			return nil, ErrNotOpen
		}
		if !c.Amount.IsPositive() {
			return nil, fmt.Errorf("%w: %s", ErrInvalidAmount, c.Amount)
		}
		return []Event{Deposited{Amount: c.Amount}}, nil
	case Withdraw:
		if !a.Open {
			return nil, ErrNotOpen
		}
		if !c.Amount.IsPositive() {
			return nil, fmt.Errorf("%w: %s", ErrInvalidAmount, c.Amount)
		}
		if a.Balance.LessThan(c.Amount) {
			return nil, fmt.Errorf("%w: balance %s, withdrawal %s", ErrOverdraft, a.Balance.StringFixed(2), c.Amount.StringFixed(2))
		}
		return []Event{Withdrew{Amount: c.Amount}}, nil
	}
	return nil, fmt.Errorf("bank: unknown command %T", c)
}

// Register registers the account's event types under their stored names.
func Register(r *event.Registry) error {
	return errors.Join(
		event.Register[AccountOpened](r, "bank.account_opened"),
		event.Register[Deposited](r, "bank.deposited"),
		event.Register[Withdrew](r, "bank.withdrew"),
	)
}
