package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/stream"
)

// Event types the authorizer writes: a transaction and its decision, in one
// append to the user's stream (txn-USER).
const (
	TypeTransaction = "transaction"
	TypeDecision    = "transaction.decided"
)

// Decision is what Authorize answers, and the data of the decision event.
type Decision struct {
	Transaction event.ID  `json:"transaction_id"`
	User        string    `json:"user_id"`
	At          time.Time `json:"at"`
	Outcome     Action    `json:"outcome"` // approve, review or deny
	Fired       []Fired   `json:"fired,omitempty"`
	// Position is where the transaction is in the log.
	Position uint64 `json:"-"`
	// Repeated is set when the transaction had already been decided: this
	// is the recorded decision, and nothing was appended.
	Repeated bool `json:"-"`
	// Amendments are the user's earlier decisions this transaction, come
	// late, changed; they are recorded with it.
	Amendments []Amendment `json:"-"`
}

// Fired is a rule that fired, with the values its condition read (the
// candidate counted in).
type Fired struct {
	Rule     string  `json:"rule"`
	Version  uint64  `json:"version,omitempty"`
	Action   Action  `json:"action"`
	Severity string  `json:"severity,omitempty"`
	Values   []Value `json:"values"`
}

// Value is one aggregate a condition read, named as the condition wrote it.
type Value struct {
	Name  string  `json:"name"`
	Value num.Dec `json:"value"`
}

// Options tunes an Authorizer. The zero value is ready to use.
type Options struct {
	// Shards is how many independent locks the windows are split over
	// (256): concurrent decisions about different keys proceed in parallel
	// and their appends share group commits.
	Shards int
	// Remember is how long (event time) a decided transaction's id is kept
	// to answer a retry with the recorded decision (10 minutes, and at
	// least the Lateness: a retry later than that would not be counted
	// again anyway).
	Remember time.Duration
	// Now is the clock for transactions without a time (time.Now).
	Now func() time.Time
	// Lateness is how far behind the latest transaction seen one may come
	// and still count in the windows where it belongs (1 minute); one
	// later than that is decided on what the windows still hold, and not
	// counted.
	Lateness time.Duration
	// Dir, when set, is where the windows are checkpointed (every
	// CheckpointEvery decisions, 100,000, and on Close), so that Open
	// replays only the transactions recorded after the checkpoint.
	Dir             string
	CheckpointEvery int
	// Checkpoints, when set, keeps the checkpoint instead of a file in Dir:
	// in PostgreSQL, say, for nodes that keep no state on their disks.
	Checkpoints CheckpointStore
}

// CheckpointStore keeps an Authorizer's checkpoint. A checkpoint is a
// shortcut, never the truth: one lost, stale or another's costs a longer
// replay of the log, not a wrong decision.
type CheckpointStore interface {
	// LoadCheckpoint returns the saved checkpoint, nil if there is none.
	LoadCheckpoint(ctx context.Context) ([]byte, error)
	// SaveCheckpoint replaces it, atomically.
	SaveCheckpoint(ctx context.Context, data []byte) error
}

// Authorizer decides about transactions with a rule set's windows, and
// records each transaction with its decision in the log.
type Authorizer struct {
	st   store.Store
	opts Options

	mu       sync.RWMutex // held for writing while the rule set changes
	saveMu   sync.Mutex   // one checkpoint captured and saved at a time
	changeMu sync.Mutex   // one rule change (or reload) at a time
	log      ruleLog      // the rules as recorded
	set      *Set         // the enabled ones, compiled
	shards   []*shard
	maxT     atomic.Int64 // the latest transaction time seen (ms; noTime before the first)

	applied         atomic.Uint64 // the position up to which transactions are counted
	seen            atomic.Int64  // ≥ maxT: raised before a transaction's append, for marks
	marks           marks
	sinceMark       atomic.Int64
	sinceCheckpoint atomic.Int64
	ckErr           atomic.Pointer[error] // the last checkpoint that failed in Authorize
	lost            atomic.Pointer[error] // see ErrStateLost
	backfill        Backfill              // the latest rule change's
	amended         amendedSet            // see keyed.go
}

type shard struct {
	mu      sync.Mutex
	windows *windows
	recent  map[event.ID]uint64  // transaction id → its position, for ids callers gave
	flights map[event.ID]*flight // ids callers gave whose appends are queued
	// queued waits for the latest append queued by a decision that held
	// this shard (nil: none yet).
	queued func() (store.AppendResult, error)
	// lastDenied: the latest time of a denied transaction (one the
	// windows may not count: see late) of a user, or of another key
	// field's value (valueKey).
	lastDenied map[string]int64
	// keyed: the recent decisions of each value of a key field other than
	// the user (valueKey), for amendments (see index).
	keyed      map[string][]keyedDecision
	keyedSince int            // decisions indexed since the last sweep of keyed
	in         []*Transaction // values' scratch
	x          evalCtx        // evaluate's
	order      []recentID     // recent's ids by time, order[oldest:] still in recent
	oldest     int
	vals       []num.Dec
}

// recentID is a remembered id and its transaction's time (exported
// fields: checkpoints hold them).
type recentID struct {
	T  int64
	ID event.ID
}

// Open loads the rule set from the log (the default set when the log has
// none) and rebuilds the windows from the transactions recorded there.
func Open(ctx context.Context, st store.Store, opts Options) (*Authorizer, error) {
	if opts.Shards <= 0 {
		opts.Shards = 256
	}
	if opts.Remember <= 0 {
		opts.Remember = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Lateness <= 0 {
		opts.Lateness = time.Minute
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 100_000
	}
	if opts.Checkpoints == nil && opts.Dir != "" {
		opts.Checkpoints = dirCheckpoints(opts.Dir)
	}
	a := &Authorizer{st: st, opts: opts}
	l, err := loadRules(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := a.rebuild(ctx, l); err != nil {
		return nil, err
	}
	return a, nil
}

// rebuild compiles rules and replays every recorded transaction into fresh
// windows: a rule added now is as right about the next transaction as if
// it had always been there.
func (a *Authorizer) rebuild(ctx context.Context, l ruleLog) error {
	set, err := NewSet(l.rules)
	if err != nil {
		return err
	}
	shards := make([]*shard, a.opts.Shards)
	for i := range shards {
		w, err := newWindows(set, a.opts.Lateness)
		if err != nil {
			return err
		}
		shards[i] = &shard{windows: w, recent: map[event.ID]uint64{}, flights: map[event.ID]*flight{}, lastDenied: map[string]int64{}, keyed: map[string][]keyedDecision{}, vals: make([]num.Dec, len(set.terms.list))}
	}
	a.log, a.set, a.shards = l, set, shards
	a.lost.Store(nil) // the windows are rebuilt from the log
	a.marks.reset(nil)
	after, maxT, err := a.restore(shards)
	if err != nil {
		return err
	}
	a.maxT.Store(maxT)
	a.applied.Store(after)
	n := 0
	for r, err := range a.history(ctx, after) {
		if err != nil {
			return err
		}
		var h held
		a.lock(r.txn, &h)
		err := a.apply(r.txn, r.d, &h)
		if err == nil {
			a.remember(h.home, millis(r.txn.At), r.txn.ID, r.d.Position)
			a.covered(r.end)
		}
		a.unlock(&h)
		if err != nil {
			return err
		}
		if n++; n%markEvery == 0 {
			a.marks.add(r.end, a.maxT.Load())
		}
	}
	a.seen.Store(a.maxT.Load())
	a.marks.add(a.applied.Load(), a.maxT.Load())
	return a.recentIndex(ctx)
}

// recordedTxn is a transaction read back from the log with its decision
// (whose Position is the transaction's); end is the decision's position.
type recordedTxn struct {
	txn *Transaction
	d   Decision
	end uint64
}

// history reads back the transactions recorded after position after, in
// log order.
func (a *Authorizer) history(ctx context.Context, after uint64) iter.Seq2[recordedTxn, error] {
	return func(yield func(recordedTxn, error) bool) {
		var txn *Transaction
		var pos uint64
		for rec, err := range a.st.ReadAll(ctx, store.ReadAllOptions{After: after, Filter: store.Filter{Types: []string{TypeTransaction, TypeDecision}, StreamPrefix: "txn-"}}) {
			if err != nil {
				yield(recordedTxn{}, fmt.Errorf("rules: replay: %w", err))
				return
			}
			switch rec.Type {
			case TypeTransaction:
				txn = new(Transaction)
				if err := gojson.Unmarshal(rec.Data, txn); err != nil {
					yield(recordedTxn{}, fmt.Errorf("rules: replay: transaction at %d: %w", rec.Position, err))
					return
				}
				pos = rec.Position
			case TypeDecision:
				// What a replay needs of a decision: whom it is about and
				// its outcome, not the rules' values.
				var dd struct {
					Transaction event.ID `json:"transaction_id"`
					Outcome     Action   `json:"outcome"`
				}
				if err := gojson.Unmarshal(rec.Data, &dd); err != nil {
					yield(recordedTxn{}, fmt.Errorf("rules: replay: decision at %d: %w", rec.Position, err))
					return
				}
				if txn == nil || txn.ID != dd.Transaction {
					yield(recordedTxn{}, fmt.Errorf("rules: replay: decision at %d is not about the transaction before it", rec.Position))
					return
				}
				d := Decision{Transaction: dd.Transaction, User: txn.User, At: txn.At, Outcome: dd.Outcome, Position: pos}
				if !yield(recordedTxn{txn, d, rec.Position}, nil) {
					return
				}
				txn = nil
			}
		}
	}
}

// Authorize decides about txn with every rule in force, over the windows
// with txn counted in, appends the transaction and the decision to the log
// in one durable append, and counts txn in the windows (unless it was
// denied: a denied transaction did not happen, except for rules that count
// denied ones). A transaction whose id was decided before gets the recorded
// decision back.
//
// On the embedded log the windows count txn as soon as its append is
// queued, and the next decision about the same keys need not wait for this
// one's fsync; it is acknowledged after this one, and fails with it when
// the log fails, so no answer rests on a transaction the log lost. Once queued, the append is
// waited for whatever becomes of ctx. Should it fail, the windows count a
// transaction the log may not have: every later call fails with
// ErrStateLost until the Authorizer is opened again.
func (a *Authorizer) Authorize(ctx context.Context, txn Transaction) (Decision, error) {
	d, err := a.authorize(ctx, txn)
	if err == nil && !d.Repeated && a.sinceMark.Add(1)%int64(markEvery) == 0 {
		// Covered first, then seen: every transaction at or before the
		// covered position raised seen before it got its position.
		p := a.applied.Load()
		a.marks.add(p, a.seen.Load())
	}
	if err == nil && a.opts.Checkpoints != nil && a.sinceCheckpoint.Add(1)%int64(a.opts.CheckpointEvery) == 0 {
		// The decision is recorded whatever happens to the checkpoint (a
		// shortcut, not the truth): a failure is kept for CheckpointError,
		// and the next one is tried CheckpointEvery decisions later.
		if cerr := a.Checkpoint(); cerr != nil {
			a.ckErr.Store(&cerr)
		}
	}
	return d, err
}

func (a *Authorizer) authorize(ctx context.Context, txn Transaction) (Decision, error) {
	if err := txn.check(); err != nil {
		return Decision{}, err
	}
	if txn.At.IsZero() {
		txn.At = a.opts.Now()
	}
	txn.At = txn.At.UTC().Truncate(time.Millisecond)
	given := !txn.ID.IsZero()
	if !given {
		txn.ID = event.NewID()
	}
	// Held until the append is durable: a rule change or a checkpoint
	// waits for every decision in flight.
	a.mu.RLock()
	defer a.mu.RUnlock()
	if e := a.lost.Load(); e != nil {
		return Decision{}, *e
	}
	var h held
	a.lock(&txn, &h)
	locked := true
	defer func() {
		if locked {
			a.unlock(&h)
		}
	}()
	home := a.shards[h.home]
	if given {
		if pos, ok := home.recent[txn.ID]; ok {
			return a.recorded(ctx, pos)
		}
		if f, ok := home.flights[txn.ID]; ok {
			a.unlock(&h)
			locked = false
			<-f.done
			d := f.d
			d.Repeated = true
			return d, f.err
		}
	}
	d, err := a.decide(&txn, &h)
	if err != nil {
		return Decision{}, err
	}
	if a.late(&txn, &h) != 0 {
		// The log is read back: the decisions about these keys that are
		// queued must be in it.
		for _, i := range h.shards[:h.n] {
			if q := a.shards[i].queued; q != nil {
				if _, err := q(); err != nil {
					return Decision{}, fmt.Errorf("rules: an earlier decision: %w", err)
				}
			}
		}
		if d.Amendments, err = a.amendments(ctx, &txn, d, &h); err != nil {
			return Decision{}, err
		}
		oldest := a.maxT.Load() - a.opts.Lateness.Milliseconds()
		for i := range d.Amendments {
			a.amended.note(&d.Amendments[i], oldest)
		}
	}
	evs, err := recordOf(&txn, &d)
	if err != nil {
		return Decision{}, err
	}
	// Before the append has a position: a mark taken once that position
	// is covered then counts this transaction's time (see marks).
	raise(&a.seen, millis(txn.At))
	enq, ok := a.st.(enqueuer)
	if !ok {
		// A store that cannot queue: the shards stay held through the
		// durable append, so that a failed one leaves the windows as they
		// were.
		res, err := a.st.Append(ctx, StreamOf(txn.User), store.Any, evs...)
		if err != nil {
			return Decision{}, fmt.Errorf("rules: record decision: %w", err)
		}
		d.Position = res.FirstPosition
		a.covered(res.LastPosition)
		if err := a.apply(&txn, d, &h); err != nil {
			return Decision{}, err
		}
		if given {
			a.remember(h.home, millis(txn.At), txn.ID, d.Position)
		}
		return d, nil
	}
	wait, err := enq.Enqueue(ctx, StreamOf(txn.User), store.Any, evs...)
	if err != nil {
		return Decision{}, fmt.Errorf("rules: record decision: %w", err)
	}
	// Counted before it is durable, and the shards let go: the next
	// decision about these keys sees this transaction, and its append,
	// queued after this one, is acknowledged after it, and fails with it
	// when the log fails (its write errors are sticky). The one way this
	// append alone can be refused once queued is an I/O error reading the
	// stream index: then the Authorizer stops (ErrStateLost), though a
	// decision made meanwhile may have counted it.
	if err := a.apply(&txn, d, &h); err != nil {
		a.lose(err)
		return Decision{}, err
	}
	for _, i := range h.shards[:h.n] {
		a.shards[i].queued = wait
	}
	var f *flight
	if given {
		f = &flight{done: make(chan struct{})}
		home.flights[txn.ID] = f
	}
	a.unlock(&h)
	locked = false
	res, err := wait()
	if err != nil {
		err = fmt.Errorf("rules: record decision: %w", err)
		a.lose(err)
	} else {
		d.Position = res.FirstPosition
		a.covered(res.LastPosition)
	}
	if given {
		home.mu.Lock()
		delete(home.flights, txn.ID)
		if err == nil {
			a.remember(h.home, millis(txn.At), txn.ID, d.Position)
		}
		home.mu.Unlock()
		f.d, f.err = d, err
		close(f.done)
	}
	if err != nil {
		return Decision{}, err
	}
	return d, nil
}

// enqueuer is a store that fixes an append's place in its order before the
// append is durable (eventlog.Log): Authorize then holds its shards for the
// decision only, not for the fsync, so that two callers whose users share a
// shard do not wait a group commit for each other.
type enqueuer interface {
	Enqueue(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (func() (store.AppendResult, error), error)
}

// flight is a decision whose append is queued and not yet durable, for a
// retry of its transaction to wait for.
type flight struct {
	done chan struct{}
	d    Decision
	err  error
}

// ErrStateLost is returned, wrapped, by every Authorize and Checkpoint after
// a decision's queued append failed: the windows count a transaction the log
// may not have. Open rebuilds them from the log.
var ErrStateLost = errors.New("rules: a counted transaction was not recorded; reopen the authorizer to rebuild its windows from the log")

func (a *Authorizer) lose(err error) {
	e := fmt.Errorf("%w: %w", ErrStateLost, err)
	a.lost.CompareAndSwap(nil, &e)
}

// recorded reads back the decision recorded for the transaction at pos.
func (a *Authorizer) recorded(ctx context.Context, pos uint64) (Decision, error) {
	for rec, err := range a.st.ReadAll(ctx, store.ReadAllOptions{After: pos, Limit: 1}) {
		if err != nil {
			return Decision{}, fmt.Errorf("rules: read the recorded decision: %w", err)
		}
		var d Decision
		if rec.Type != TypeDecision {
			break
		}
		if err := json.Unmarshal(rec.Data, &d); err != nil {
			return Decision{}, fmt.Errorf("rules: read the recorded decision: %w", err)
		}
		d.Position, d.Repeated = pos, true
		return d, nil
	}
	return Decision{}, fmt.Errorf("rules: no decision recorded after the transaction at %d", pos)
}

// recordOf is the append that records a transaction with its decision (and
// the amendments it causes). goccy/go-json encodes them as encoding/json
// does, in 0.4 of the time (0.77 µs against 1.9 µs for the pair): this is
// on every decision's path.
func recordOf(txn *Transaction, d *Decision) ([]event.Event, error) {
	txnData, err := gojson.Marshal(txn)
	if err != nil {
		return nil, fmt.Errorf("rules: encode transaction: %w", err)
	}
	decData, err := gojson.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("rules: encode decision: %w", err)
	}
	evs := []event.Event{
		{ID: txn.ID, Type: TypeTransaction, Data: txnData},
		{ID: decisionID(txn.ID), Type: TypeDecision, Data: decData},
	}
	for _, am := range d.Amendments {
		data, err := gojson.Marshal(am)
		if err != nil {
			return nil, fmt.Errorf("rules: encode amendment: %w", err)
		}
		evs = append(evs, event.Event{Type: TypeAmendment, Data: data})
	}
	return evs, nil
}

// covered notes that the transactions up to pos are counted (decisions are
// applied under their shards' locks, so none before pos is still in flight
// when a checkpoint holds them all back).
func (a *Authorizer) covered(pos uint64) {
	for {
		p := a.applied.Load()
		if pos <= p || a.applied.CompareAndSwap(p, pos) {
			return
		}
	}
}

// decisionID derives the decision event's id from the transaction's, so a
// retried append is recognised whole.
func decisionID(txn event.ID) event.ID {
	id := txn
	id[len(id)-1] ^= 0xff
	return id
}

// held is what one decision holds: the shard of the transaction's user
// (where its id is remembered), the shard of each of the set's key fields,
// and the distinct ones, locked in ascending order so that two decisions
// never wait for each other. Arrays, not slices, so that it stays on the
// caller's stack.
type held struct {
	home   int
	keys   [maxKeys]int
	shards [maxKeys + 1]int
	n      int // shards[:n] are locked
}

// group is the shard holding group g's windows for the transaction.
func (h *held) group(s *Set, g int) int { return h.keys[s.groups[g].keyIdx] }

func (a *Authorizer) lock(txn *Transaction, h *held) {
	h.place(a.set, len(a.shards), txn)
	for _, i := range h.shards[:h.n] {
		a.shards[i].mu.Lock()
	}
}

// place sets the shards of n that a decision about txn holds under set, in
// ascending order.
func (h *held) place(set *Set, n int, txn *Transaction) {
	h.home = shardOf(txn.User, n)
	h.shards[0], h.n = h.home, 1
	for i, f := range set.keys {
		s := h.home
		if f.name != "user_id" {
			s = shardOf(f.str(txn), n)
		}
		h.keys[i] = s
		if !slices.Contains(h.shards[:h.n], s) {
			h.shards[h.n] = s
			h.n++
		}
	}
	slices.Sort(h.shards[:h.n])
}

func (a *Authorizer) unlock(h *held) {
	for _, i := range h.shards[:h.n] {
		a.shards[i].mu.Unlock()
	}
}

// decide evaluates every rule for txn (its shards locked), with txn
// counted in.
func (a *Authorizer) decide(txn *Transaction, h *held) (Decision, error) {
	vals := a.shards[h.home].vals
	if err := a.values(h, txn, millis(txn.At), []counted{{txn: txn}}, vals, allKeys); err != nil {
		return Decision{}, err
	}
	d := Decision{Transaction: txn.ID, User: txn.User, At: txn.At}
	d.Outcome, d.Fired = a.evaluate(a.shards[h.home], txn, vals, allKeys, nil)
	return d, nil
}

// counted is a transaction probed into the windows with the outcome that
// says whether they count it ("": the candidate, counted whatever). With
// ifNotCounted, it is one the windows already have where they count it, so
// it is added only where they do not.
type counted struct {
	txn          *Transaction
	outcome      Action
	ifNotCounted bool
}

func (c counted) in(def *groupDef) bool {
	counts := def.counts(c.outcome)
	if c.ifNotCounted {
		return !counts
	}
	return c.outcome == "" || counts
}

// keySet is a set of the rule set's key fields, by index in Set.keys.
type keySet uint16

const allKeys keySet = 1<<maxKeys - 1

func (k keySet) has(i int) bool { return i >= 0 && k&(1<<i) != 0 }

// values sets the term values of the windows kept by the given key fields
// for of's key values at instant t, with the given transactions counted in
// where their outcomes let them.
func (a *Authorizer) values(h *held, of *Transaction, t int64, extra []counted, vals []num.Dec, keys keySet) error {
	home := a.shards[h.home] // its scratch is ours while its lock is held
	in := home.in[:0]
	defer func() { home.in = in[:0] }()
	for g := range a.set.groups {
		def := &a.set.groups[g]
		if !keys.has(def.keyIdx) {
			continue
		}
		in = in[:0]
		for _, c := range extra {
			if c.in(def) {
				in = append(in, c.txn)
			}
		}
		key := def.key.str(of)
		// A transaction later than the lateness reads what every build of
		// these windows keeps: nothing older than their longest span
		// before the oldest instant still counted.
		floor := int64(stream.MinTime)
		if a.tooLate(t) {
			floor = a.maxT.Load() - a.opts.Lateness.Milliseconds() - def.longest + 1
		}
		if err := a.shards[h.group(a.set, g)].windows.engines[g].probe(key, t, floor, in, def.terms, vals); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
	}
	return nil
}

// evaluate runs the condition of every rule keyed by one of keys on the
// term values, and takes the others as they fired before (carried: the
// decision's or its latest amendment's, when some are not evaluated): the
// outcome is the strongest action among the rules that fired (alert leaves
// it approve).
func (a *Authorizer) evaluate(home *shard, txn *Transaction, vals []num.Dec, keys keySet, carried []Fired) (Action, []Fired) {
	outcome := Approve
	var fired []Fired
	// The home shard's context: one the compiled closures can point at
	// without allocating one per decision.
	x := &home.x
	*x = evalCtx{txn: txn, vals: vals}
	defer func() { *x = evalCtx{} }()
	for _, r := range a.set.rules {
		if !keys.has(r.keyIdx) {
			if i := slices.IndexFunc(carried, func(f Fired) bool { return f.Rule == r.Name }); i >= 0 {
				fired = append(fired, carried[i])
				if r.Action.rank() > outcome.rank() && r.Action != Alert {
					outcome = r.Action
				}
			}
			continue
		}
		if !r.cond(x) {
			continue
		}
		f := Fired{Rule: r.Name, Version: a.log.versions[r.Name], Action: r.Action, Severity: r.Severity, Values: make([]Value, len(r.slots))}
		for i, slot := range r.slots {
			f.Values[i] = Value{Name: r.names[i], Value: vals[slot]}
		}
		fired = append(fired, f)
		if r.Action.rank() > outcome.rank() && r.Action != Alert {
			outcome = r.Action
		}
	}
	return outcome, fired
}

// apply counts a decided transaction in the windows (unless it came later
// than the lateness allows) and notes its time.
func (a *Authorizer) apply(txn *Transaction, d Decision, h *held) error {
	t := millis(txn.At)
	counted := !a.tooLate(t)
	if counted {
		for g, def := range a.set.groups {
			if !def.counts(d.Outcome) {
				continue
			}
			key := def.key.str(txn)
			if err := a.shards[h.group(a.set, g)].windows.engines[g].add(key, t, txn); err != nil {
				return fmt.Errorf("rules: %w", err)
			}
		}
	}
	raise(&a.maxT, t)
	if counted {
		// One later than the lateness amends nothing, so is never looked
		// for.
		a.index(txn, h)
	}
	a.decided(txn, d, h)
	// No transaction is expected before the latest seen: the windows of
	// earlier instants can fire and be forgotten, and one that does come
	// is counted where it belongs (within the lateness).
	w := a.maxT.Load() - 1
	for _, i := range h.shards[:h.n] {
		for _, e := range a.shards[i].windows.engines {
			e.watermark(w)
		}
	}
	return nil
}

// tooLate reports whether a transaction at t comes later than the lateness
// allows: it is decided on what the windows keep, and not counted. Decided
// by the latest time seen, not by each engine's own watermark (which moves
// only when its shard is touched), so that windows built at different
// times — a rule change's backfill, a replay — agree on what they count.
func (a *Authorizer) tooLate(t int64) bool {
	return t < a.maxT.Load()-a.opts.Lateness.Milliseconds()
}

// raise sets v to t if t is later.
func raise(v *atomic.Int64, t int64) {
	for {
		m := v.Load()
		if t <= m || v.CompareAndSwap(m, t) {
			return
		}
	}
}

// remember keeps a decided transaction's id (one its caller gave) in its
// home shard, to recognise a retry, and forgets those past Remember.
func (a *Authorizer) remember(shard int, t int64, id event.ID, pos uint64) {
	home := a.shards[shard]
	home.recent[id] = pos
	home.order = append(home.order, recentID{t, id})
	w := a.maxT.Load()
	keep := max(a.opts.Remember, a.opts.Lateness).Milliseconds()
	for home.oldest < len(home.order) && home.order[home.oldest].T < w-keep {
		delete(home.recent, home.order[home.oldest].ID)
		home.order[home.oldest] = recentID{}
		home.oldest++
	}
	if home.oldest > 1024 && home.oldest > len(home.order)/2 {
		home.order = slices.Delete(home.order, 0, home.oldest)
		home.oldest = 0
	}
}

// WindowStats is the size of the windows' state: the keys holding
// transactions (one per user and window family, per key field), and the
// transactions counted into them since the windows were built.
type WindowStats struct {
	Keys   int
	Events uint64
}

// WindowStats sums every shard's engines, each under its shard's lock.
func (a *Authorizer) WindowStats() WindowStats {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out WindowStats
	for _, sh := range a.shards {
		sh.mu.Lock()
		for _, e := range sh.windows.engines {
			st := e.stats()
			out.Keys += st.Keys
			out.Events += st.Events
		}
		sh.mu.Unlock()
	}
	return out
}
