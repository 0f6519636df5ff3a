package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/stream"
)

// Transaction is what Authorize decides about. Its JSON form is the data
// of the "transaction" event the decision is recorded with, so that rule
// keys read like event fields (data.user_id).
type Transaction struct {
	// ID makes a retry safe: a transaction whose ID (given by the caller)
	// was decided within Options.Remember gets the recorded decision back,
	// and nothing is appended. A zero ID is replaced by a fresh one.
	ID       event.ID          `json:"id"`
	User     string            `json:"user_id"`
	Amount   num.Dec           `json:"amount"`
	Currency string            `json:"currency,omitempty"`
	Merchant string            `json:"merchant,omitempty"`
	Country  string            `json:"country,omitempty"`
	At       time.Time         `json:"at"` // event time; zero means now
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// ErrTransaction is wrapped by the errors for a transaction that cannot be
// decided as given (no user, a negative amount); nothing is written.
var ErrTransaction = errors.New("rules: invalid transaction")

func (t *Transaction) check() error {
	switch {
	case t.User == "":
		return fmt.Errorf("%w: user_id is empty", ErrTransaction)
	case t.Amount.Sign() < 0:
		return fmt.Errorf("%w: amount %s is negative", ErrTransaction, t.Amount)
	case !t.At.IsZero() && (millis(t.At) < stream.MinTime || millis(t.At) > stream.MaxTime):
		return fmt.Errorf("%w: at %v is out of range", ErrTransaction, t.At)
	}
	if err := event.ValidateStream(StreamOf(t.User)); err != nil {
		return fmt.Errorf("%w: user_id: %v", ErrTransaction, err)
	}
	return nil
}

// StreamOf is the stream a user's transactions and decisions go to.
func StreamOf(user string) string { return "txn-" + user }

// field is a transaction field a rule reads: a key, an aggregate's
// argument, or a value in a condition.
type field struct {
	name string // user_id, amount, merchant, country, currency, or attrs
	attr string // the attribute, for attrs.NAME
}

func (f field) String() string {
	if f.name == "attrs" {
		return "attrs." + f.attr
	}
	return f.name
}

func (f field) numeric() bool { return f.name == "amount" }

// fieldOf reads a field path: a field name, attrs.NAME, either with data.
// before it (the transaction event's data).
func fieldOf(path string) (field, error) {
	p := strings.TrimPrefix(path, "data.")
	switch p {
	case "user_id", "amount", "merchant", "country", "currency":
		return field{name: p}, nil
	}
	if a, ok := strings.CutPrefix(p, "attrs."); ok && a != "" {
		return field{name: "attrs", attr: a}, nil
	}
	return field{}, fmt.Errorf("%q is not a transaction field (user_id, amount, merchant, country, currency, attrs.NAME)", path)
}

// str is a field's value as text (the amount in its decimal form).
func (f field) str(t *Transaction) string {
	switch f.name {
	case "user_id":
		return t.User
	case "merchant":
		return t.Merchant
	case "country":
		return t.Country
	case "currency":
		return t.Currency
	case "amount":
		return t.Amount.String()
	}
	return t.Attrs[f.attr]
}

// millis is a time in the engine's unit.
func millis(t time.Time) int64 { return t.UnixMilli() }

// noTime is before every transaction's time: the latest seen before the
// first (zero would make a transaction before 1970 late).
const noTime = stream.MinTime - 1
