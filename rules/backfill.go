package rules

import (
	"context"
	"slices"
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
	// Took is the whole change; Held the part of it decisions waited for
	// (the end of the replay, and putting the new rules in place).
	Took, Held time.Duration
}

// LastBackfill reports the latest rule change's backfill.
func (a *Authorizer) LastBackfill() Backfill {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.backfill
}

// A rule change keeps the windows the rule set had before and still has,
// and fills the new ones from the log, from the newest mark before the
// oldest transaction they can still read: their longest span before the
// oldest instant still counted (the latest time seen, less the lateness).
// Everything older is outside every window any later decision reads (a
// transaction later than the lateness reads nothing older either: see
// values), so the windows decide as a replay of the whole log would. What
// does not depend on the rules (the ids remembered for retries, the marks,
// the users' denials) stays.
//
// The new windows are filled off to the side while decisions go on under
// the rules in force, then, with decisions held, from where that left off
// to the end of the log, and put in place: decisions wait for what was
// recorded during the replay, not for the replay.

// fill is a rule change's new windows, being filled.
type fill struct {
	set     *Set
	kept    []int                        // per group of set: the group of the rules in force it keeps, or -1
	fresh   []int                        // the groups to fill
	engines [][]engine                   // [shard][group]: the fresh groups' engines
	denied  []map[string]int64           // [shard]: denials noted for the new key fields
	newKeys []int                        // the key fields of set the rules in force do not key by
	keyed   []map[string][]keyedDecision // [shard]: the new key fields' recent decisions
	recent  int64                        // the oldest time a recent decision is kept from
	seen    int64                        // the latest transaction time read
	pos     uint64                       // the last position read
	Backfill
}

// prepare sets up the fill of set's new windows (a.mu held for reading).
func (a *Authorizer) prepare(set *Set) (*fill, error) {
	f := &fill{set: set, kept: make([]int, len(set.groups))}
	for g := range set.groups {
		f.kept[g] = -1
		for o := range a.set.groups {
			if set.groups[g].same(&a.set.groups[o]) {
				f.kept[g] = o
				break
			}
		}
		if f.kept[g] < 0 {
			f.fresh = append(f.fresh, g)
		}
	}
	f.Windows = len(f.fresh)
	if len(f.fresh) == 0 {
		return f, nil
	}
	for k, kf := range set.keys {
		if kf.name != "user_id" && !slices.Contains(a.set.keys, kf) {
			f.newKeys = append(f.newKeys, k)
		}
	}
	f.engines = make([][]engine, len(a.shards))
	f.denied = make([]map[string]int64, len(a.shards))
	f.keyed = make([]map[string][]keyedDecision, len(a.shards))
	for i := range a.shards {
		f.engines[i] = make([]engine, len(set.groups))
		for _, g := range f.fresh {
			e, err := set.newGroupEngine(set.groups[g], a.opts.Lateness)
			if err != nil {
				return nil, err
			}
			f.engines[i][g] = e
		}
		f.denied[i] = map[string]int64{}
		f.keyed[i] = map[string][]keyedDecision{}
	}
	maxT := a.maxT.Load()
	f.recent = maxT - a.opts.Lateness.Milliseconds()
	oldest := maxT
	for _, g := range f.fresh {
		oldest = min(oldest, maxT-a.opts.Lateness.Milliseconds()-set.groups[g].longest+1)
	}
	m := a.marks.atOrBefore(oldest - 1)
	// The latest time seen as the replay goes starts at the mark's: what
	// the replay counts then differs from what the live windows counted
	// only in transactions older than the mark's time, which no window
	// reads.
	f.After, f.pos, f.seen = m.Pos, m.Pos, m.T
	return f, nil
}

// run replays the transactions recorded after the last one read into the
// fresh windows.
func (f *fill) run(ctx context.Context, a *Authorizer) error {
	if len(f.fresh) == 0 {
		return nil
	}
	lateness := a.opts.Lateness.Milliseconds()
	for r, err := range a.history(ctx, f.pos) {
		if err != nil {
			return err
		}
		f.Transactions++
		f.pos = r.end
		t := millis(r.txn.At)
		var h held
		h.place(f.set, len(a.shards), r.txn)
		if t >= f.seen-lateness {
			for _, g := range f.fresh {
				def := &f.set.groups[g]
				if !def.counts(r.d.Outcome) {
					continue
				}
				if err := f.engines[h.group(f.set, g)][g].add(def.key.str(r.txn), t, r.txn); err != nil {
					return err
				}
			}
		}
		if t >= f.recent && t >= f.seen-lateness {
			for _, k := range f.newKeys {
				kf := f.set.keys[k]
				key := valueKey(kf, kf.str(r.txn))
				f.keyed[h.keys[k]][key] = append(f.keyed[h.keys[k]][key], keyedDecision{at: t, id: r.txn.ID, user: r.txn.User})
			}
		}
		if r.d.Outcome == Deny {
			// A new key field's denials, for telling late transactions
			// (the users' are noted whatever the rules).
			for k, kf := range f.set.keys {
				if kf.name != "user_id" {
					noteDenied(f.denied[h.keys[k]], kf, r.txn)
				}
			}
		}
		f.seen = max(f.seen, t)
		for _, i := range h.shards[:h.n] {
			for _, g := range f.fresh {
				f.engines[i][g].watermark(f.seen - 1)
			}
		}
	}
	return nil
}

// install puts the filled windows and the rule set in force (a.mu held).
func (a *Authorizer) install(f *fill, l ruleLog) {
	for i, sh := range a.shards {
		engines := make([]engine, len(f.set.groups))
		for g := range f.set.groups {
			if f.kept[g] >= 0 {
				engines[g] = sh.windows.engines[f.kept[g]]
			} else {
				engines[g] = f.engines[i][g]
			}
		}
		sh.windows = &windows{engines: engines}
		sh.vals = make([]num.Dec, len(f.set.terms.list))
		if f.denied != nil {
			for k, t := range f.denied[i] {
				if last, ok := sh.lastDenied[k]; !ok || t > last {
					sh.lastDenied[k] = t
				}
			}
			for k, list := range f.keyed[i] {
				sh.keyed[k] = append(sh.keyed[k], list...)
			}
		}
	}
	a.set, a.log = f.set, l
	a.dropKeyed()
}
