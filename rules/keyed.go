package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	gojson "github.com/goccy/go-json"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// A late transaction amends the decisions that share a key value with it
// and come after it. Those of its user are in its user's stream. Those of
// other users at its merchant (any key field but the user) are found
// through an index of each key value's recent decisions, kept in memory for
// the lateness (a later transaction is not counted, so amends nothing):
// the log has no index by merchant, and reading all of it since the late
// transaction's time collapses when many come late under load. The index
// names the decisions' users, whose streams are then read back as a
// user's own is.
//
// An amendment is recorded with the transaction that causes it, in that
// transaction's user's stream, not always the amended one's: the latest
// outcome of each decision amended within the lateness is kept in memory
// too, for the next late transaction to compare with.
//
// Both are rebuilt when the Authorizer opens, from the log's last lateness
// of transactions (from a mark), not checkpointed.

// keyedDecision is a decision in a key value's index.
type keyedDecision struct {
	at   int64
	id   event.ID
	user string
}

// index notes a decision about txn in the indexes of its key values other
// than the user (its shards held), and forgets those older than the
// lateness.
func (a *Authorizer) index(txn *Transaction, h *held) {
	t := millis(txn.At)
	oldest := a.maxT.Load() - a.opts.Lateness.Milliseconds()
	for k, f := range a.set.keys {
		if f.name == "user_id" {
			continue
		}
		sh := a.shards[h.keys[k]]
		key := valueKey(f, f.str(txn))
		list := sh.keyed[key]
		drop := 0
		for drop < len(list) && list[drop].at < oldest {
			drop++
		}
		list = append(list[drop:], keyedDecision{at: t, id: txn.ID, user: txn.User})
		sh.keyed[key] = list
		// Values that go quiet keep their last decisions until a sweep,
		// which comes after half as many decisions as the shard holds
		// values (1,024 at least): a constant cost per decision.
		if sh.keyedSince++; sh.keyedSince >= max(1024, len(sh.keyed)/2) {
			sh.keyedSince = 0
			for key, list := range sh.keyed {
				kept := slices.DeleteFunc(list, func(e keyedDecision) bool { return e.at < oldest })
				if len(kept) == 0 {
					delete(sh.keyed, key)
				} else {
					sh.keyed[key] = kept
				}
			}
		}
	}
}

// amendedInfo is a decision's latest amendment.
type amendedInfo struct {
	at      int64
	outcome Action
	fired   []Fired
}

// amendedSet keeps the latest amendment of the decisions amended within the
// lateness.
type amendedSet struct {
	mu   sync.Mutex
	byID map[event.ID]amendedInfo
	kept int // len(byID) after the last pruning
}

func (s *amendedSet) note(am *Amendment, oldest int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[event.ID]amendedInfo{}
	}
	s.byID[am.Transaction] = amendedInfo{millis(am.At), am.Outcome, am.Fired}
	if len(s.byID) > 2*s.kept+64 {
		for id, x := range s.byID {
			if x.at < oldest {
				delete(s.byID, id)
			}
		}
		s.kept = len(s.byID)
	}
}

func (s *amendedSet) get(id event.ID) (amendedInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	return x, ok
}

func (s *amendedSet) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID, s.kept = nil, 0
}

// recentIndex rebuilds the key values' indexes and the amendments from the
// transactions of the last lateness (every shard's index emptied first).
func (a *Authorizer) recentIndex(ctx context.Context) error {
	for _, sh := range a.shards {
		sh.keyed = map[string][]keyedDecision{}
	}
	a.amended.reset()
	oldest := a.maxT.Load() - a.opts.Lateness.Milliseconds()
	m := a.marks.atOrBefore(oldest - 1)
	for rec, err := range a.st.ReadAll(ctx, store.ReadAllOptions{After: m.Pos, Filter: store.Filter{Types: []string{TypeTransaction, TypeAmendment}, StreamPrefix: "txn-"}}) {
		if err != nil {
			return fmt.Errorf("rules: recent decisions: %w", err)
		}
		switch rec.Type {
		case TypeTransaction:
			var x Transaction
			if err := gojson.Unmarshal(rec.Data, &x); err != nil {
				return fmt.Errorf("rules: recent decisions: transaction at %d: %w", rec.Position, err)
			}
			if millis(x.At) < oldest {
				continue
			}
			var h held
			h.place(a.set, len(a.shards), &x)
			a.index(&x, &h)
		case TypeAmendment:
			var am Amendment
			if err := gojson.Unmarshal(rec.Data, &am); err != nil {
				return fmt.Errorf("rules: recent decisions: amendment at %d: %w", rec.Position, err)
			}
			a.amended.note(&am, oldest)
		}
	}
	return nil
}

// dropKeyed forgets the indexes of key fields the rules no longer key by.
func (a *Authorizer) dropKeyed() {
	keep := map[string]bool{}
	for _, f := range a.set.keys {
		keep[f.String()] = true
	}
	for _, sh := range a.shards {
		for key := range sh.keyed {
			if name, _, ok := strings.Cut(key, "\x00"); ok && !keep[name] {
				delete(sh.keyed, key)
			}
		}
	}
}
