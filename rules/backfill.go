package rules

import (
	"context"
	"time"

	"github.com/stratadb/strata/num"
)

// Backfill is what a rule change replayed to fill its new windows.
type Backfill struct {
	// Windows is how many groups of windows were new; those of the rules
	// in force before whose windows did not change were kept as they were.
	Windows int
	// After is the position the replay started after, and Transactions
	// how many it read.
	After        uint64
	Transactions int
	Took         time.Duration
}

// LastBackfill reports the latest rule change's backfill.
func (a *Authorizer) LastBackfill() Backfill {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.backfill
}

// switchRules puts a changed rule set in force (every decision held back).
// Windows a rule set had before and still has are kept. New ones are
// filled from the log, from the newest mark before the oldest transaction
// they can still read: their longest span before the oldest instant still
// counted (the latest time seen, less the lateness). Everything older is
// outside every window any later decision reads (a transaction later than
// the lateness reads nothing older either: see values), so the windows
// decide as a replay of the whole log would. What does not depend on the
// rules — the ids remembered for retries, the marks, denied times — stays.
func (a *Authorizer) switchRules(ctx context.Context, l ruleLog) error {
	if a.lost.Load() != nil {
		return a.rebuild(ctx, l) // the windows disagree with the log
	}
	start := time.Now()
	set, err := NewSet(l.rules)
	if err != nil {
		return err
	}
	old := a.set
	kept := make([]int, len(set.groups))
	var fresh []int
	for g := range set.groups {
		kept[g] = -1
		for o := range old.groups {
			if set.groups[g].same(&old.groups[o]) {
				kept[g] = o
				break
			}
		}
		if kept[g] < 0 {
			fresh = append(fresh, g)
		}
	}
	for _, sh := range a.shards {
		engines := make([]engine, len(set.groups))
		for g := range set.groups {
			if kept[g] >= 0 {
				engines[g] = sh.windows.engines[kept[g]]
			} else if engines[g], err = newGroupEngine(set.groups[g], a.opts.Lateness); err != nil {
				return err
			}
		}
		sh.windows = &windows{engines: engines}
		sh.vals = make([]num.Dec, len(set.terms.list))
	}
	a.set, a.log = set, l
	a.backfill = Backfill{Windows: len(fresh)}
	if len(fresh) > 0 {
		if err := a.fill(ctx, fresh); err != nil {
			return err
		}
	}
	a.backfill.Took = time.Since(start)
	if a.opts.Checkpoints != nil {
		// So that a restart need not replay the whole log for the new
		// rule set (a checkpoint is for one rule set).
		if err := a.checkpoint(); err != nil {
			a.ckErr.Store(&err)
		}
	}
	return nil
}

// fill replays the recorded transactions its groups' windows can still
// read into them.
func (a *Authorizer) fill(ctx context.Context, groups []int) error {
	lateness := a.opts.Lateness.Milliseconds()
	maxT := a.maxT.Load()
	oldest := maxT
	for _, g := range groups {
		oldest = min(oldest, maxT-lateness-a.set.groups[g].longest+1)
	}
	m := a.marks.atOrBefore(oldest - 1)
	a.backfill.After = m.Pos
	// The latest time seen as the replay goes, from the mark's: what the
	// replay counts then differs from what the live windows counted only
	// in transactions older than the mark's time, which no window reads.
	seen := m.T
	for r, err := range a.history(ctx, m.Pos) {
		if err != nil {
			return err
		}
		a.backfill.Transactions++
		t := millis(r.txn.At)
		var h held
		a.place(r.txn, &h)
		if t >= seen-lateness {
			for _, g := range groups {
				def := &a.set.groups[g]
				if !def.counts(r.d.Outcome) {
					continue
				}
				if err := a.shards[h.group(a.set, g)].windows.engines[g].add(def.key.str(r.txn), t, r.txn); err != nil {
					return err
				}
			}
		}
		if r.d.Outcome == Deny {
			// A new key field's denials, for telling late transactions
			// (the users' are noted whatever the rules).
			for k, f := range a.set.keys {
				if f.name != "user_id" {
					noteDenied(a.shards[h.keys[k]].lastDenied, f, r.txn)
				}
			}
		}
		seen = max(seen, t)
		for _, i := range h.shards[:h.n] {
			for _, g := range groups {
				a.shards[i].windows.engines[g].watermark(seen - 1)
			}
		}
	}
	return nil
}
