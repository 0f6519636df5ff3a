package api

import (
	"fmt"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
)

// Transaction is the body of POST /v1/authorize.
type Transaction struct {
	ID       string            `json:"id,omitempty" doc:"a UUID: a retry with the same id gets the recorded decision back"`
	User     string            `json:"user_id" minLength:"1"`
	Amount   string            `json:"amount" doc:"an exact decimal, e.g. \"12.50\""`
	Currency string            `json:"currency,omitempty"`
	Merchant string            `json:"merchant,omitempty"`
	Country  string            `json:"country,omitempty"`
	At       string            `json:"at,omitempty" doc:"event time, RFC 3339 (default: now)"`
	Attrs    map[string]string `json:"attrs,omitempty" doc:"read by rules as attrs.NAME"`
}

// ToTransaction parses t; its errors wrap rules.ErrTransaction.
func (t *Transaction) ToTransaction() (rules.Transaction, error) {
	out := rules.Transaction{User: t.User, Currency: t.Currency, Merchant: t.Merchant, Country: t.Country, Attrs: t.Attrs}
	var err error
	if out.Amount, err = num.Parse(t.Amount); err != nil {
		return out, fmt.Errorf("%w: amount %q: %w", rules.ErrTransaction, t.Amount, err)
	}
	if t.ID != "" {
		if out.ID, err = event.ParseID(t.ID); err != nil {
			return out, fmt.Errorf("%w: id: %w", rules.ErrTransaction, err)
		}
	}
	if t.At != "" {
		if out.At, err = time.Parse(time.RFC3339Nano, t.At); err != nil {
			return out, fmt.Errorf("%w: at %q: want RFC 3339 (2026-11-28T12:00:00Z)", rules.ErrTransaction, t.At)
		}
	}
	return out, nil
}

// FromTransaction is t as a request carries it.
func FromTransaction(t *rules.Transaction) Transaction {
	out := Transaction{User: t.User, Amount: t.Amount.String(), Currency: t.Currency, Merchant: t.Merchant, Country: t.Country, Attrs: t.Attrs}
	if !t.ID.IsZero() {
		out.ID = t.ID.String()
	}
	if !t.At.IsZero() {
		out.At = t.At.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// Decision is what POST /v1/authorize answers.
type Decision struct {
	Transaction string      `json:"transaction_id"`
	User        string      `json:"user_id"`
	At          string      `json:"at"`
	Outcome     string      `json:"outcome" enum:"approve,review,deny"`
	Fired       []Fired     `json:"fired,omitempty" doc:"the rules that fired, with the values their conditions read"`
	Position    uint64      `json:"position" doc:"where the transaction is in the log"`
	Repeated    bool        `json:"repeated,omitempty" doc:"decided before: the recorded decision, nothing appended"`
	Amendments  []Amendment `json:"amendments,omitempty" doc:"earlier decisions this late transaction changed"`
}

// Fired is a rule that fired.
type Fired struct {
	Rule     string  `json:"rule"`
	Version  uint64  `json:"version,omitempty"`
	Action   string  `json:"action"`
	Severity string  `json:"severity,omitempty"`
	Values   []Value `json:"values"`
}

// Value is one aggregate a condition read.
type Value struct {
	Name  string `json:"name"`
	Value string `json:"value" doc:"an exact decimal"`
}

// Amendment revises an earlier decision.
type Amendment struct {
	Transaction string  `json:"transaction_id"`
	User        string  `json:"user_id"`
	At          string  `json:"at"`
	Outcome     string  `json:"outcome"`
	Previous    string  `json:"previous"`
	Fired       []Fired `json:"fired,omitempty"`
	Cause       string  `json:"cause" doc:"the late transaction"`
}

// FromDecision is d on the wire.
func FromDecision(d *rules.Decision) Decision {
	out := Decision{Transaction: d.Transaction.String(), User: d.User, At: d.At.UTC().Format(time.RFC3339Nano),
		Outcome: string(d.Outcome), Fired: fromFired(d.Fired), Position: d.Position, Repeated: d.Repeated}
	for _, am := range d.Amendments {
		out.Amendments = append(out.Amendments, Amendment{Transaction: am.Transaction.String(), User: am.User,
			At: am.At.UTC().Format(time.RFC3339Nano), Outcome: string(am.Outcome), Previous: string(am.Previous),
			Fired: fromFired(am.Fired), Cause: am.Cause.String()})
	}
	return out
}

func fromFired(fs []rules.Fired) []Fired {
	var out []Fired
	for _, f := range fs {
		w := Fired{Rule: f.Rule, Version: f.Version, Action: string(f.Action), Severity: f.Severity, Values: []Value{}}
		for _, v := range f.Values {
			w.Values = append(w.Values, Value{Name: v.Name, Value: v.Value.String()})
		}
		out = append(out, w)
	}
	return out
}

// Rule is a fraud rule as GET /v1/rules lists it (the same fields as a
// rule file, durations written as 60s, 5m), with its version.
type Rule struct {
	Name        string            `json:"name"`
	Version     uint64            `json:"version"`
	Description string            `json:"description,omitempty"`
	Key         string            `json:"key"`
	Window      *Window           `json:"window,omitempty"`
	Windows     map[string]Window `json:"windows,omitempty"`
	Condition   string            `json:"condition"`
	Action      string            `json:"action"`
	Severity    string            `json:"severity,omitempty"`
	CountDenied bool              `json:"count_denied,omitempty"`
	Disabled    bool              `json:"disabled,omitempty"`
}

// Window is a rule's window.
type Window struct {
	Type   string `json:"type"`
	Size   string `json:"size"`
	Slide  string `json:"slide,omitempty"`
	Offset string `json:"offset,omitempty"`
	Gap    string `json:"gap,omitempty"`
}

// Rules is the rule set.
type Rules struct {
	Rules []Rule `json:"rules"`
}

// FromRule is r on the wire.
func FromRule(r *rules.Rule, version uint64) Rule {
	win := func(w rules.Window) Window {
		out := Window{Type: w.Type, Size: time.Duration(w.Size).String()}
		if w.Slide != 0 {
			out.Slide = time.Duration(w.Slide).String()
		}
		if w.Offset != 0 {
			out.Offset = time.Duration(w.Offset).String()
		}
		if w.Gap != 0 {
			out.Gap = time.Duration(w.Gap).String()
		}
		return out
	}
	out := Rule{Name: r.Name, Version: version, Description: r.Description, Key: r.Key, Condition: r.Condition,
		Action: string(r.Action), Severity: r.Severity, CountDenied: r.CountDenied, Disabled: r.Disabled}
	if r.Window != nil {
		w := win(*r.Window)
		out.Window = &w
	}
	for name, w := range r.Windows {
		if out.Windows == nil {
			out.Windows = map[string]Window{}
		}
		out.Windows[name] = win(w)
	}
	return out
}

// ToDecision reverses FromDecision.
func (d *Decision) ToDecision() (rules.Decision, error) {
	var out rules.Decision
	var err error
	if out.Transaction, err = event.ParseID(d.Transaction); err != nil {
		return out, fmt.Errorf("api: decision: %w", err)
	}
	if out.At, err = time.Parse(time.RFC3339Nano, d.At); err != nil {
		return out, fmt.Errorf("api: decision: at: %w", err)
	}
	out.User, out.Outcome, out.Position, out.Repeated = d.User, rules.Action(d.Outcome), d.Position, d.Repeated
	if out.Fired, err = toFired(d.Fired); err != nil {
		return out, err
	}
	for _, am := range d.Amendments {
		a := rules.Amendment{User: am.User, Outcome: rules.Action(am.Outcome), Previous: rules.Action(am.Previous)}
		if a.Transaction, err = event.ParseID(am.Transaction); err != nil {
			return out, fmt.Errorf("api: amendment: %w", err)
		}
		if a.Cause, err = event.ParseID(am.Cause); err != nil {
			return out, fmt.Errorf("api: amendment: %w", err)
		}
		if a.At, err = time.Parse(time.RFC3339Nano, am.At); err != nil {
			return out, fmt.Errorf("api: amendment: at: %w", err)
		}
		if a.Fired, err = toFired(am.Fired); err != nil {
			return out, err
		}
		out.Amendments = append(out.Amendments, a)
	}
	return out, nil
}

func toFired(fs []Fired) ([]rules.Fired, error) {
	var out []rules.Fired
	for _, f := range fs {
		r := rules.Fired{Rule: f.Rule, Version: f.Version, Action: rules.Action(f.Action), Severity: f.Severity}
		for _, v := range f.Values {
			d, err := num.Parse(v.Value)
			if err != nil {
				return nil, fmt.Errorf("api: fired %s: %s: %w", f.Rule, v.Name, err)
			}
			r.Values = append(r.Values, rules.Value{Name: v.Name, Value: d})
		}
		out = append(out, r)
	}
	return out, nil
}
