package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Options configure a Runner. The zero value is valid.
type Options struct {
	// BatchSize caps the events applied in one transaction. Default 1000.
	BatchSize int
	// MaxDelay is how long a batch that is not full waits for more events
	// before it is applied. Default 0: apply what has arrived at once, for
	// the lowest lag; a busy log fills batches anyway.
	MaxDelay time.Duration
	// Retries is how many times a failing batch is retried (with Backoff,
	// doubling) before the projection stops in the failed state. Default 5.
	Retries int
	// Backoff is the first retry's delay. Default 50ms.
	Backoff time.Duration
	// Registry upcasts events before the projection sees them. Event types
	// it does not know pass as stored. Default: none.
	Registry *event.Registry
	// Logger receives retries and failures. Default: discard.
	Logger *slog.Logger
	// Now is the clock for checkpoint times and lag. Default time.Now.
	Now func() time.Time
	// PollInterval is how often the runner reads its stored state, which
	// tools in other processes change (pause, resume, skip). Default 500ms.
	PollInterval time.Duration
	// Until, when not 0, is the last position to apply: Run returns nil
	// once the checkpoint reaches it. For bringing a version to an exact
	// position (a hand-off, a shadow comparison).
	Until uint64
	// Quiet suppresses a SideEffecter's effects: for a version that is not
	// the one serving (it is catching up on events whose effects the
	// serving version already had).
	Quiet bool
	// Partition, when its Count is above 1, makes the runner apply one
	// share of the projection's events, so that several runners (in one
	// process or on several nodes) share a projection's live work. Each
	// share has its own checkpoint and state, under PartitionName. As in a
	// parallel Replay, events of different keys then reach the projection
	// in no particular order, so rows that events of several keys touch
	// must be updated commutatively.
	Partition Partition
}

// Partition is share Index (0-based) of Count shares of a projection's
// events: those whose key — a Partitioner's, else the stream — hashes to
// Index, exactly as a parallel Replay deals them.
type Partition struct {
	Index, Count int
}

// PartitionName is the name under which share part of projection name
// keeps its checkpoint and state: name itself when there is one share,
// else "name#index/count".
func PartitionName(name string, part Partition) string {
	if part.Count <= 1 {
		return name
	}
	return fmt.Sprintf("%s#%d/%d", name, part.Index, part.Count)
}

func (o *Options) ensureDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
}

// State is what a runner is doing.
type State string

const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StatePaused   State = "paused"
	StateFailed   State = "failed"
	StateStopped  State = "stopped"
)

// Failure is why a projection stopped: the event it could not apply.
type Failure struct {
	Position uint64       `json:"position"`
	Event    event.Record `json:"-"`
	Type     string       `json:"type"`
	Stream   string       `json:"stream"`
	Err      string       `json:"error"`
	At       time.Time    `json:"at"`
}

// ErrNotFailed: Skip was asked of a projection that is not failed.
var ErrNotFailed = errors.New("projection: not in the failed state")

// Runner feeds one projection from the log. Run it in its own goroutine;
// Pause, Resume, Skip and Status are safe to call from others.
type Runner struct {
	p    Projection
	name string // of the checkpoint and state: PartitionName
	db   *sql.DB
	src  store.Store
	opts Options
	// keyer deals events to partitions (Partition.Count > 1 only); keyed is
	// the one record it sees them through.
	keyer Partitioner
	keyed *event.Record
	pg    bool // db is PostgreSQL

	mu struct {
		sync.Mutex
		state    State
		position uint64
		failure  *Failure
		changed  chan struct{} // closed and replaced when position or state moves
	}
	control chan controlReq
}

type controlReq struct {
	action string // "pause", "resume", "skip"
	reason string
	reply  chan error
}

// NewRunner returns a runner of p, writing into db, reading src.
func NewRunner(p Projection, db *sql.DB, src store.Store, opts Options) *Runner {
	opts.ensureDefaults()
	p = forDB(p, db)
	r := &Runner{p: p, name: PartitionName(p.Name(), opts.Partition), db: db, src: src, opts: opts, control: make(chan controlReq), pg: isPostgres(db)}
	if opts.Partition.Count > 1 {
		r.keyer, _ = p.(Partitioner)
		r.keyed = new(event.Record)
	}
	r.mu.state = StateStarting
	r.mu.changed = make(chan struct{})
	return r
}

// Run sets the projection's tables up and applies events until ctx is done.
// It returns ctx's error, or an error that stops it from running at all.
func (r *Runner) Run(ctx context.Context) error {
	defer r.setState(StateStopped, nil)
	if part := r.opts.Partition; part.Count < 0 || part.Count > 1 && (part.Index < 0 || part.Index >= part.Count) {
		return fmt.Errorf("projection %s: partition %d of %d does not exist", r.p.Name(), part.Index, part.Count)
	}
	if err := setupTables(ctx, r.db, r.p, replayDDL); err != nil {
		return err
	}
	if parts, _, err := loadPartitions(ctx, r.db, r.name); err != nil || parts != nil {
		if err == nil {
			err = errReplayUnfinished
		}
		return fmt.Errorf("projection %s: %w", r.name, err)
	}
	pos, err := checkpoint(ctx, r.db, r.name)
	if err != nil {
		return fmt.Errorf("projection %s: read checkpoint: %w", r.name, err)
	}
	r.advance(pos)
	if r.opts.Until != 0 && pos >= r.opts.Until {
		return nil
	}
	start := StateRunning
	if stored, err := readStored(ctx, r.db, r.name); err == nil && stored.State == StatePaused {
		start = StatePaused // paused from outside while no runner ran
	}
	r.setState(start, nil)
	for {
		var err error
		switch r.State() {
		case StateRunning:
			err = r.runLive(ctx)
		default: // paused or failed: wait for the operator
			err = r.waitControl(ctx)
		}
		if errors.Is(err, errReachedUntil) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errReachedUntil ends a runner that has applied Options.Until.
var errReachedUntil = errors.New("projection: reached the position to stop at")

// runLive subscribes after the checkpoint and applies batches until the
// state changes or ctx ends.
func (r *Runner) runLive(ctx context.Context) error {
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type item struct {
		entry
		err error // the subscription's
	}
	ch := make(chan item, r.opts.BatchSize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rec, err := range r.src.Subscribe(subCtx, store.SubscribeOptions{After: r.Position()}) {
			if err == nil && r.opts.Until != 0 && rec.Position > r.opts.Until {
				err = errReachedUntil
			}
			it := item{err: err}
			if err == nil {
				if r.mine(&rec) {
					it.entry = prepareEntry(r.p, r.opts.Registry, rec)
				} else {
					it.entry = entry{rec: rec, skip: true}
				}
			}
			select {
			case ch <- it:
			case <-subCtx.Done():
				return
			}
			if err != nil {
				return
			}
			if r.opts.Until != 0 && rec.Position == r.opts.Until {
				// Say so now rather than when (if ever) the next event comes.
				select {
				case ch <- item{err: errReachedUntil}:
				case <-subCtx.Done():
				}
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()

	tick := time.NewTicker(r.opts.PollInterval)
	defer tick.Stop()
	batch := make([]entry, 0, r.opts.BatchSize)
	for {
		batch = batch[:0]
		var first item
		select {
		case first = <-ch:
		case req := <-r.control:
			if r.handleControl(req) {
				return nil
			}
			continue
		case <-tick.C:
			if r.poll(ctx) {
				return nil
			}
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		if first.err != nil {
			return r.subscriptionEnded(ctx, first.err)
		}
		batch = append(batch, first.entry)
		var deadline <-chan time.Time // nil: take only what has arrived
		var timer *time.Timer
		if r.opts.MaxDelay > 0 {
			timer = time.NewTimer(r.opts.MaxDelay)
			deadline = timer.C
		}
		var ended error // the subscription's error, dealt with after the batch
	gather:
		for len(batch) < r.opts.BatchSize {
			var it item
			if deadline == nil {
				select {
				case it = <-ch:
				default:
					break gather
				}
			} else {
				select {
				case it = <-ch:
				case <-deadline:
					break gather
				}
			}
			if it.err != nil {
				ended = it.err
				break gather
			}
			batch = append(batch, it.entry)
		}
		if timer != nil {
			timer.Stop()
		}
		if !r.applyBatch(ctx, batch) {
			// Failed (waitControl takes over), ctx ended, or the checkpoint
			// moved under us (the live loop restarts from it).
			return ctx.Err()
		}
		if ended != nil {
			return r.subscriptionEnded(ctx, ended)
		}
	}
}

// subscriptionEnded turns the error that ended the subscription into Run's.
func (r *Runner) subscriptionEnded(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, errReachedUntil) {
		return err
	}
	return fmt.Errorf("projection %s: subscription: %w", r.name, err)
}

// applyBatch applies batch with retries; on exhaustion it applies the
// events one at a time to commit those before the failing one and stops in
// the failed state at it. It reports whether the runner keeps running.
func (r *Runner) applyBatch(ctx context.Context, batch []entry) bool {
	delay := r.opts.Backoff
	var err error
	defer func() {
		if errors.Is(err, errCheckpointMoved) {
			// Nothing was applied; follow the stored checkpoint.
			r.opts.Logger.Warn("projection: checkpoint moved under this runner; following it", "projection", r.name)
			if pos, cerr := checkpoint(context.Background(), r.db, r.name); cerr == nil {
				r.advance(pos)
			}
		}
	}()
	for attempt := 0; attempt <= r.opts.Retries; attempt++ {
		if attempt > 0 {
			r.opts.Logger.Warn("projection: batch failed, retrying", "projection", r.name, "attempt", attempt, "err", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return false
			}
			delay *= 2
		}
		if err = r.commit(ctx, batch); err == nil {
			return true
		}
		if ctx.Err() != nil || errors.Is(err, errCheckpointMoved) {
			return false
		}
	}
	for i := range batch {
		if err = r.commit(ctx, batch[i:i+1]); errors.Is(err, errCheckpointMoved) {
			return false
		} else if err != nil {
			e := batch[i].rec
			f := &Failure{Position: e.Position, Event: e, Type: e.Type, Stream: e.Stream, Err: err.Error(), At: r.opts.Now()}
			r.opts.Logger.Error("projection: stopped at a failing event", "projection", r.name, "position", f.Position, "err", err)
			r.setState(StateFailed, f)
			return false
		}
	}
	return true // the batch failed as a whole but not one by one
}

// entry is an event on its way to the projection: upcast, and prepared
// when the projection prepares events; err when either failed. skip: the
// event belongs to another partition, and only moves the checkpoint.
type entry struct {
	rec  event.Record
	prep any
	err  error
	skip bool
}

// mine reports whether rec belongs to the runner's partition.
func (r *Runner) mine(rec *event.Record) bool {
	part := r.opts.Partition
	if part.Count <= 1 {
		return true
	}
	key := rec.Stream
	if r.keyer != nil {
		*r.keyed = *rec
		key = r.keyer.PartitionKey(r.keyed)
	}
	return hashKey(key)%uint64(part.Count) == uint64(part.Index)
}

// prepareEntry upcasts rec and, for a PreparingProjection, prepares it. It
// runs on a reading goroutine, ahead of Apply.
func prepareEntry(p Projection, reg *event.Registry, rec event.Record) entry {
	e := entry{rec: rec}
	if e.err = upcast(reg, &e.rec); e.err != nil {
		return e
	}
	if pp, ok := p.(PreparingProjection); ok {
		e.prep, e.err = pp.Prepare(&e.rec)
	}
	return e
}

// upcast brings rec's data to its type's current schema version (reg nil:
// nothing to do). Types reg does not know pass as stored.
func upcast(reg *event.Registry, rec *event.Record) error {
	if reg == nil {
		return nil
	}
	data, version, err := reg.Upcast(&rec.Event)
	switch {
	case errors.Is(err, event.ErrUnknownType):
		return nil
	case err != nil:
		return err
	}
	rec.Data, rec.Schema = data, version
	return nil
}

// commit applies entries and saves the checkpoint in one transaction.
func (r *Runner) commit(ctx context.Context, entries []entry) error {
	// The transaction runs to its end whatever happens to ctx: a batch is
	// short, and mattn/go-sqlite3 watches a cancellable context with a
	// goroutine per statement, which cost the projection about a third of
	// its speed.
	ctx = context.WithoutCancel(ctx)
	first, last := entries[0].rec.Position, entries[len(entries)-1].rec.Position
	if pb, ok := r.p.(PostgresBatcher); ok && r.pg {
		if err := commitPostgresBatch(ctx, r.db, pb, r.p.Name(), r.name, entries, first-1, last, r.opts.Now()); err != nil {
			return err
		}
	} else if err := r.commitTx(ctx, entries, first, last); err != nil {
		return err
	}
	// Effects before announcing the position: whoever waits for it (a
	// read-your-writes query, a hand-off) finds them done.
	if se, ok := r.p.(SideEffecter); ok && !r.opts.Quiet {
		for i := range entries {
			if entries[i].skip {
				continue
			}
			if err := se.Effect(ctx, entries[i].rec); err != nil {
				r.opts.Logger.Error("projection: side effect failed", "projection", r.name, "position", entries[i].rec.Position, "err", err)
			}
		}
	}
	r.advance(last)
	return nil
}

// commitTx is commit's transaction through database/sql.
func (r *Runner) commitTx(ctx context.Context, entries []entry, first, last uint64) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := applyEntries(ctx, tx, r.p, entries); err != nil {
		return err
	}
	if err := advanceCheckpoint(ctx, tx, r.name, first-1, last, r.opts.Now()); err != nil {
		return err
	}
	return tx.Commit()
}

// waitControl waits, paused or failed, for the operator.
func (r *Runner) waitControl(ctx context.Context) error {
	tick := time.NewTicker(r.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case req := <-r.control:
			r.handleControl(req)
			return nil
		case <-tick.C:
			if r.poll(ctx) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// handleControl carries out an operator's request; it reports whether the
// state changed (the live loop must restart).
func (r *Runner) handleControl(req controlReq) bool {
	state := r.State()
	var err error
	changed := false
	switch req.action {
	case "pause":
		if state == StateRunning {
			r.record("pause", "")
			r.setState(StatePaused, nil)
			changed = true
		}
	case "resume":
		if state == StatePaused || state == StateFailed {
			r.record("resume", "was "+string(state))
			r.setState(StateRunning, nil)
			changed = true
		}
	case "skip":
		err = r.skip(req.reason)
		changed = err == nil
	}
	req.reply <- err
	return changed
}

// record writes an operator action to strata_projection_log.
func (r *Runner) record(action, detail string) {
	ctx := context.Background()
	tx, err := r.db.BeginTx(ctx, nil)
	if err == nil {
		defer tx.Rollback()
		if err = logAction(ctx, tx, r.name, action, r.Position(), detail, r.opts.Now()); err == nil {
			err = tx.Commit()
		}
	}
	if err != nil {
		r.opts.Logger.Error("projection: cannot record an operator action", "projection", r.name, "action", action, "err", err)
	}
}

// skip moves a failed projection past its failing event, recording it.
func (r *Runner) skip(reason string) error {
	f := r.Status().Failure
	if r.State() != StateFailed || f == nil {
		return ErrNotFailed
	}
	if err := skipFailed(context.Background(), r.db, r.name, f, reason, r.opts.Now()); err != nil {
		return err
	}
	r.advance(f.Position)
	r.setState(StateRunning, nil)
	return nil
}

func (r *Runner) request(ctx context.Context, action, reason string) error {
	req := controlReq{action: action, reason: reason, reply: make(chan error, 1)}
	select {
	case r.control <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.reply
}

// Pause stops applying events until Resume.
func (r *Runner) Pause(ctx context.Context) error { return r.request(ctx, "pause", "") }

// Resume restarts a paused projection, or retries a failed one from its
// failing event.
func (r *Runner) Resume(ctx context.Context) error { return r.request(ctx, "resume", "") }

// Skip moves a failed projection past the event it failed on, recording
// the skip (and reason) in strata_projection_log, and resumes it.
func (r *Runner) Skip(ctx context.Context, reason string) error {
	return r.request(ctx, "skip", reason)
}

// setState stores the state first and only then announces it, so that
// whoever sees the runner's state change finds it in the database too.
func (r *Runner) setState(s State, f *Failure) {
	if s == StateRunning || s == StatePaused || s == StateFailed {
		if err := saveState(context.Background(), r.db, r.name, s, f); err != nil {
			r.opts.Logger.Error("projection: cannot store state", "projection", r.name, "err", err)
		}
	}
	r.mu.Lock()
	r.mu.state, r.mu.failure = s, f
	r.notifyLocked()
	r.mu.Unlock()
}

// poll follows the stored state, which tools in other processes change,
// and beats the heartbeat. It reports whether the runner's state changed.
func (r *Runner) poll(ctx context.Context) bool {
	_ = heartbeat(ctx, r.db, r.name, r.opts.Now())
	stored, err := readStored(ctx, r.db, r.name)
	if err != nil {
		return false
	}
	cur := r.State()
	switch {
	case stored.State == StatePaused && cur == StateRunning:
		r.setState(StatePaused, nil)
		return true
	case stored.State == StateRunning && (cur == StatePaused || cur == StateFailed):
		// Resumed, or skipped (the checkpoint may have moved on).
		r.advance(stored.Position)
		r.setState(StateRunning, nil)
		return true
	}
	return false
}

func (r *Runner) advance(pos uint64) {
	r.mu.Lock()
	r.mu.position = pos
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *Runner) notifyLocked() {
	close(r.mu.changed)
	r.mu.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the runner's next change of
// state or position.
func (r *Runner) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.changed
}

// State returns what the runner is doing.
func (r *Runner) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.state
}

// Position returns the checkpoint: the last position applied.
func (r *Runner) Position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.position
}

// Status is a projection's state and progress.
type Status struct {
	Name     string   `json:"name"`
	State    State    `json:"state"`
	Position uint64   `json:"position"`
	Failure  *Failure `json:"failure,omitempty"`
}

// Status returns the runner's state, checkpoint and failure.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Name: r.name, State: r.mu.state, Position: r.mu.position, Failure: r.mu.failure}
}

// WaitFor blocks until the projection has applied position pos (for
// read-your-writes), ctx ends, or the projection fails.
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	for {
		r.mu.Lock()
		reached, state, ch := r.mu.position >= pos, r.mu.state, r.mu.changed
		r.mu.Unlock()
		if reached {
			return nil
		}
		if state == StateFailed {
			return fmt.Errorf("projection %s failed before position %d", r.name, pos)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
