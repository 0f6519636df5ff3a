package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// pastDecision is a decision of the user read back from the log.
type pastDecision struct {
	txn      Transaction
	original Action // the decision's outcome: what the windows counted it by
	latest   Action // with amendments since
}

// amendments re-decides the user's decisions after txn's time, which
// txn (counted as d says) now reaches, and returns those whose outcome
// changes, oldest first. Only rules keyed by user are re-decided: the
// user's decisions are in the user's stream, and their windows in the
// shards held.
func (a *Authorizer) amendments(ctx context.Context, txn *Transaction, d Decision, h *held) ([]Amendment, error) {
	t := millis(txn.At)
	reach := a.set.maxSpan().Milliseconds()
	pasts, err := a.pastDecisions(ctx, txn, t, reach)
	if err != nil {
		return nil, err
	}
	var out []Amendment
	vals := make([]num.Dec, len(a.set.terms.list))
	for i := len(pasts) - 1; i >= 0; i-- {
		p := &pasts[i]
		extra := []counted{{txn: txn, outcome: d.Outcome}, {txn: &p.txn, outcome: p.original, ifNotCounted: true}}
		if err := a.values(h, &p.txn, millis(p.txn.At), extra, vals, true); err != nil {
			return nil, err
		}
		outcome, fired := a.evaluate(a.shards[h.home], &p.txn, vals, true)
		if outcome != p.latest {
			out = append(out, Amendment{Transaction: p.txn.ID, User: p.txn.User, At: p.txn.At, Outcome: outcome, Previous: p.latest, Fired: fired, Cause: txn.ID})
		}
	}
	return out, nil
}

// pastDecisions reads the user's stream back, for the decisions at
// instants in (t, t+reach), newest first.
func (a *Authorizer) pastDecisions(ctx context.Context, txn *Transaction, t, reach int64) ([]pastDecision, error) {
	latest := map[event.ID]Action{}
	original := map[event.ID]Action{}
	var out []pastDecision
	// Read back to the newest mark at or before t: every transaction
	// recorded before it is at or before t. (An amendment is recorded after
	// the transaction it amends, and a decision just after its own.)
	stop := a.marks.atOrBefore(t).Pos
	for rec, err := range a.st.ReadStream(ctx, StreamOf(txn.User), store.ReadStreamOptions{Backwards: true}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("rules: read past decisions: %w", err)
		}
		if rec.Position <= stop {
			return out, nil
		}
		switch rec.Type {
		case TypeAmendment:
			var am Amendment
			if err := json.Unmarshal(rec.Data, &am); err != nil {
				return nil, fmt.Errorf("rules: amendment at %d: %w", rec.Position, err)
			}
			if _, ok := latest[am.Transaction]; !ok {
				latest[am.Transaction] = am.Outcome
			}
		case TypeDecision:
			var dd Decision
			if err := json.Unmarshal(rec.Data, &dd); err != nil {
				return nil, fmt.Errorf("rules: decision at %d: %w", rec.Position, err)
			}
			original[dd.Transaction] = dd.Outcome
			if _, ok := latest[dd.Transaction]; !ok {
				latest[dd.Transaction] = dd.Outcome
			}
		case TypeTransaction:
			var x Transaction
			if err := json.Unmarshal(rec.Data, &x); err != nil {
				return nil, fmt.Errorf("rules: transaction at %d: %w", rec.Position, err)
			}
			tx := millis(x.At)
			if tx > t && tx-t < reach && x.ID != txn.ID {
				out = append(out, pastDecision{txn: x, original: original[x.ID], latest: latest[x.ID]})
			}
		}
	}
	return out, nil
}

// userKeyed reports whether every window of r is kept per user.
func (r *compiledRule) userKeyed() bool {
	f, _ := fieldOf(r.Key)
	return f.name == "user_id"
}

// late reports whether the user has decisions after txn's instant (those
// at the same instant came first, and stand: a burst of transactions
// stamped with one millisecond is not late, and must not read the user's
// stream back at each one). One later than the lateness is not: it is not
// counted, so it changes no decision.
func (a *Authorizer) late(txn *Transaction, h *held) bool {
	t := millis(txn.At)
	if a.tooLate(t) {
		return false
	}
	last, ok := a.newest(txn, h)
	return ok && t < last
}

// newest is the time of the user's newest transaction the windows know of:
// counted ones are in the user-keyed windows (which the decision has just
// probed, so asking costs no lookup), denied ones that no such window
// counts are in the home shard's lastDenied. Exact for a transaction within
// the lateness, whatever the windows have forgotten: they keep every
// transaction after it.
func (a *Authorizer) newest(txn *Transaction, h *held) (int64, bool) {
	var last int64
	found := false
	for g := range a.set.groups {
		if a.set.groups[g].key.name != "user_id" {
			continue
		}
		if t, ok := a.shards[h.group(a.set, g)].windows.engines[g].newest(txn.User); ok && (!found || t > last) {
			last, found = t, true
		}
	}
	if t, ok := a.shards[h.home].lastDenied[txn.User]; ok && (!found || t > last) {
		last, found = t, true
	}
	return last, found
}

// decided notes a denied transaction's time: whatever the rules in force,
// so that a rule change finds it noted.
func (a *Authorizer) decided(txn *Transaction, d Decision, h *held) {
	if d.Outcome != Deny {
		return
	}
	s := a.shards[h.home]
	if last, ok := s.lastDenied[txn.User]; !ok || millis(txn.At) > last {
		s.lastDenied[txn.User] = millis(txn.At)
	}
}
