package rules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
)

// TypeAmendment is the event that revises a past decision.
const TypeAmendment = "transaction.amended"

// Amendment records that a transaction decided earlier would now be decided
// otherwise: one that came late, with an earlier time, changed the windows
// the decision read. The transaction stays as it was (approved ones
// happened); the amendment is a record and an alert.
type Amendment struct {
	Transaction event.ID  `json:"transaction_id"`
	User        string    `json:"user_id"`
	At          time.Time `json:"at"`
	Outcome     Action    `json:"outcome"`
	Previous    Action    `json:"previous"`
	Fired       []Fired   `json:"fired,omitempty"`
	// Cause is the late transaction.
	Cause event.ID `json:"cause"`
}

// pastDecision is a decision read back from the log.
type pastDecision struct {
	txn      Transaction
	original Action  // the decision's outcome: what the windows counted it by
	latest   Action  // with amendments since
	fired    []Fired // the rules that fired, as of latest
}

// amendments re-decides the decisions after txn's time that share a key
// value with txn (its user's, or another user's at its merchant, say),
// which txn (counted as d says) now reaches, and returns those whose
// outcome changes, in log order. Only the rules keyed by the shared fields
// are evaluated again: their windows are in the shards held (the same key
// value, the same shard); the others' windows did not change, and stand as
// they fired.
func (a *Authorizer) amendments(ctx context.Context, txn *Transaction, d Decision, h *held) ([]Amendment, error) {
	t := millis(txn.At)
	pasts, err := a.pastDecisions(ctx, txn, t, a.set.maxSpan().Milliseconds(), h)
	if err != nil {
		return nil, err
	}
	var out []Amendment
	vals := make([]num.Dec, len(a.set.terms.list))
	for i := range pasts {
		p := &pasts[i]
		var shared keySet
		for k, f := range a.set.keys {
			if f.str(&p.txn) == f.str(txn) {
				shared |= 1 << k
			}
		}
		if shared == 0 {
			continue
		}
		extra := []counted{{txn: txn, outcome: d.Outcome}, {txn: &p.txn, outcome: p.original, ifNotCounted: true}}
		if err := a.values(h, &p.txn, millis(p.txn.At), extra, vals, shared); err != nil {
			return nil, err
		}
		outcome, fired := a.evaluate(a.shards[h.home], &p.txn, vals, shared, p.fired)
		if outcome != p.latest {
			out = append(out, Amendment{Transaction: p.txn.ID, User: p.txn.User, At: p.txn.At, Outcome: outcome, Previous: p.latest, Fired: fired, Cause: txn.ID})
		}
	}
	return out, nil
}

// pastDecisions reads back the decisions at instants in (t, t+reach) that
// share a key value with txn, in log order, with their latest outcomes:
// its user's (when a rule keys by user) and, through the index of each of
// its other key values' recent decisions, their users' (see keyed.go).
// Each of those users' streams is read back to the newest mark at or
// before t: every transaction recorded before it is at or before t.
func (a *Authorizer) pastDecisions(ctx context.Context, txn *Transaction, t, reach int64, h *held) ([]pastDecision, error) {
	stop := a.marks.atOrBefore(t).Pos
	var users []string
	seen := map[string]bool{}
	for k, f := range a.set.keys {
		if f.name == "user_id" {
			if !seen[txn.User] {
				seen[txn.User] = true
				users = append(users, txn.User)
			}
			continue
		}
		for _, e := range a.shards[h.keys[k]].keyed[valueKey(f, f.str(txn))] {
			if e.at > t && e.at-t < reach && !seen[e.user] {
				seen[e.user] = true
				users = append(users, e.user)
			}
		}
	}
	var recs []event.Record
	for _, u := range users {
		for rec, err := range a.st.ReadStream(ctx, StreamOf(u), store.ReadStreamOptions{Backwards: true}) {
			if errors.Is(err, store.ErrStreamNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("rules: read past decisions: %w", err)
			}
			if rec.Position <= stop {
				break
			}
			if rec.Type == TypeTransaction || rec.Type == TypeDecision {
				recs = append(recs, rec)
			}
		}
	}
	slices.SortFunc(recs, func(x, y event.Record) int { return cmp.Compare(x.Position, y.Position) })
	var out []pastDecision
	at := map[event.ID]int{} // a transaction's index in out
	for _, rec := range recs {
		switch rec.Type {
		case TypeTransaction:
			var x Transaction
			if err := gojson.Unmarshal(rec.Data, &x); err != nil {
				return nil, fmt.Errorf("rules: transaction at %d: %w", rec.Position, err)
			}
			if tx := millis(x.At); tx > t && tx-t < reach && x.ID != txn.ID {
				at[x.ID] = len(out)
				out = append(out, pastDecision{txn: x})
			}
		case TypeDecision:
			var dd Decision
			if err := gojson.Unmarshal(rec.Data, &dd); err != nil {
				return nil, fmt.Errorf("rules: decision at %d: %w", rec.Position, err)
			}
			if i, ok := at[dd.Transaction]; ok {
				out[i].original, out[i].latest, out[i].fired = dd.Outcome, dd.Outcome, dd.Fired
			}
		}
	}
	// An amendment may be in another user's stream (it is recorded with
	// the transaction that caused it): the latest are kept in memory.
	for i := range out {
		if x, ok := a.amended.get(out[i].txn.ID); ok {
			out[i].latest, out[i].fired = x.outcome, x.fired
		}
	}
	return out, nil
}

// late returns the key fields for which txn is late: a decision about its
// value (its user, its merchant) is at a later instant. Those at the same
// instant came first, and stand: a burst of transactions stamped with one
// millisecond is not late, and must not read the log back at each one. A
// transaction later than the lateness is late for nothing: it is not
// counted, so it changes no decision.
func (a *Authorizer) late(txn *Transaction, h *held) keySet {
	t := millis(txn.At)
	if a.tooLate(t) {
		return 0
	}
	var late keySet
	for k := range a.set.keys {
		if last, ok := a.newest(txn, h, k); ok && t < last {
			late |= 1 << k
		}
	}
	return late
}

// newest is the time of the newest transaction with txn's value of key
// field k that the windows know of: counted ones are in the windows kept by
// that field (which the decision has just probed, so asking costs no
// lookup), denied ones that no such window counts in lastDenied. Exact for
// a transaction within the lateness, whatever the windows have forgotten:
// they keep every transaction after it.
func (a *Authorizer) newest(txn *Transaction, h *held, k int) (int64, bool) {
	var last int64
	found := false
	f := a.set.keys[k]
	v := f.str(txn)
	for g := range a.set.groups {
		if a.set.groups[g].keyIdx != k {
			continue
		}
		if t, ok := a.shards[h.keys[k]].windows.engines[g].newest(v); ok && (!found || t > last) {
			last, found = t, true
		}
	}
	if t, ok := a.shards[h.keys[k]].lastDenied[valueKey(f, v)]; ok && (!found || t > last) {
		last, found = t, true
	}
	return last, found
}

// valueKey names a key field's value in a shard's maps (lastDenied,
// keyed): the user as it is (whatever the rules, every denial notes its
// user), another field's value after the field's name.
func valueKey(f field, v string) string {
	if f.name == "user_id" {
		return v
	}
	return f.String() + "\x00" + v
}

// decided notes a denied transaction's time for its user (whatever the
// rules in force, so that a rule change finds it noted) and its other key
// values.
func (a *Authorizer) decided(txn *Transaction, d Decision, h *held) {
	if d.Outcome != Deny {
		return
	}
	noteDenied(a.shards[h.home].lastDenied, userField, txn)
	for k, f := range a.set.keys {
		if f.name != "user_id" {
			noteDenied(a.shards[h.keys[k]].lastDenied, f, txn)
		}
	}
}

var userField = field{name: "user_id"}

func noteDenied(m map[string]int64, f field, txn *Transaction) {
	key := valueKey(f, f.str(txn))
	if last, ok := m[key]; !ok || millis(txn.At) > last {
		m[key] = millis(txn.At)
	}
}
