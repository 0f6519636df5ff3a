package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// ReplayOptions configure Replay. The zero value is valid.
type ReplayOptions struct {
	// Workers is the number of partitions, each applied by its own
	// goroutine. Default: the number of CPUs. A replay resumed after a crash
	// keeps the partition count (and the target) it started with, since its
	// checkpoints are per partition.
	Workers int
	// Until is the last position to replay. Default: the log's head when
	// the replay starts.
	Until uint64
	// FlushEvery is how many events a partition gathers before it applies
	// them and its checkpoint in one transaction. Large batches are what
	// make a replay fast (a projection that coalesces rows writes each
	// touched row once per batch); a crash loses at most this much work per
	// partition. Default 50,000, or 8,000,000 for a Folding projection
	// (which holds folded rows, not events, and whose cost per commit is
	// its rows: some seconds of work, measured fastest in
	// docs/benchmarks.md).
	FlushEvery int
	// Registry upcasts events before the projection sees them.
	Registry *event.Registry
	// Now is the clock for checkpoint times. Default time.Now.
	Now func() time.Time
	// Progress, when set, is called after each partition commit, one call at
	// a time, with the position every partition has passed.
	Progress func(ReplayProgress)
}

// ReplayProgress is how far a replay is.
type ReplayProgress struct {
	// Position: every partition has applied all its events up to here.
	Position uint64
	// From is where the replay (or its resumption) started; Until its target.
	From, Until uint64
	// Applied counts the events applied by this call of Replay.
	Applied uint64
}

// Partitioner is a projection that chooses how a parallel replay partitions
// its events; the default is by stream. Events with one key are applied in
// log order by one worker; events with different keys may be applied in any
// order relative to each other, so rows that events of several keys touch
// must be updated commutatively (adding to a sum, say). PartitionKey runs on
// the replay's single reading goroutine, before upcasting: keep it cheap,
// and read only fields every schema version has.
type Partitioner interface {
	PartitionKey(r *event.Record) string
}

const replayDDL = `
CREATE TABLE IF NOT EXISTS strata_replay_partitions (
	projection TEXT NOT NULL,
	partition  INTEGER NOT NULL,
	partitions INTEGER NOT NULL,
	until      INTEGER NOT NULL,
	position   INTEGER NOT NULL,
	PRIMARY KEY (projection, partition)
);`

// replayChunk is how many records the reader deals out between hand-offs
// to the workers: large enough that channel operations cost nothing per
// event, small enough that workers start at once.
const replayChunk = 4096

// Replay applies the log from p's checkpoint up to opts.Until in parallel:
// events are dealt to opts.Workers partitions by key (see Partitioner), and
// each partition applies its events in log order and commits its rows with
// its own checkpoint, so a replay that crashes resumes from each partition's
// checkpoint instead of starting over. When every partition has reached the
// target, one transaction makes it p's checkpoint (as a Runner keeps it), so
// a Runner started afterwards continues exactly there. It returns that
// position.
//
// Replay is for building a read model from history, typically a new version
// of it nobody queries yet: it gives no ordering between partitions, so the
// tables are consistent only once it returns. Only one Replay or Runner of a
// projection may run at a time.
func Replay(ctx context.Context, p Projection, db *sql.DB, src store.Store, opts ReplayOptions) (uint64, error) {
	p = forDB(p, db)
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 50_000
		if _, ok := p.(Folding); ok {
			opts.FlushEvery = 8_000_000
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	name := p.Name()
	if err := setupTables(ctx, db, p, replayDDL); err != nil {
		return 0, err
	}
	base, err := checkpoint(ctx, db, name)
	if err != nil {
		return 0, fmt.Errorf("projection %s: read checkpoint: %w", name, err)
	}
	parts, until, err := loadPartitions(ctx, db, name)
	if err != nil {
		return 0, fmt.Errorf("projection %s: read partition checkpoints: %w", name, err)
	}
	if parts == nil { // a fresh replay
		until = opts.Until
		if until == 0 {
			if until, err = src.Head(ctx); err != nil {
				return 0, fmt.Errorf("projection %s: replay: %w", name, err)
			}
		}
		if until <= base {
			return base, nil
		}
		parts = make([]uint64, opts.Workers)
		for i := range parts {
			parts[i] = base
		}
		if err := startPartitions(ctx, db, name, parts, until); err != nil {
			return 0, fmt.Errorf("projection %s: replay: %w", name, err)
		}
	}
	from := until
	for _, pos := range parts {
		from = min(from, pos)
	}

	rp := &replay{p: p, db: db, opts: opts, name: name, from: from, until: until, done: append([]uint64(nil), parts...),
		free: make(chan []event.Record, 8*len(parts))}
	g, gctx := errgroup.WithContext(ctx)
	chans := make([]chan replayBatch, len(parts))
	var workers sync.WaitGroup
	if _, ok := p.(Folding); ok {
		// Folds are written by one goroutine while the workers fold on:
		// the partitions share one SQLite write lock, and a worker that
		// waited for it starved its partition's share of the reader.
		rp.writes = make(chan foldWrite, len(parts))
		g.Go(func() error { return rp.writeFolds(gctx) })
	}
	for k := range chans {
		chans[k] = make(chan replayBatch, 4)
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return rp.work(gctx, k, chans[k])
		})
	}
	if rp.writes != nil {
		go func() {
			workers.Wait()
			close(rp.writes)
		}()
	}
	g.Go(func() error {
		defer func() {
			for _, c := range chans {
				close(c)
			}
		}()
		return rp.read(gctx, src, parts, chans)
	})
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if err := finishPartitions(ctx, db, name, base, until, opts.Now()); err != nil {
		return 0, fmt.Errorf("projection %s: finish replay: %w", name, err)
	}
	return until, nil
}

type replay struct {
	p           Projection
	db          *sql.DB
	opts        ReplayOptions
	name        string
	from, until uint64

	// writes carries full folds from the workers to writeFolds (Folding
	// projections only).
	writes chan foldWrite

	// free recycles the reader's per-partition buffers: allocating them
	// afresh for every chunk made the garbage collector the replay's
	// largest cost.
	free chan []event.Record

	mu      sync.Mutex
	done    []uint64 // per partition: committed up to
	applied uint64
}

// replayBatch is a partition's share of a chunk of the log: its records,
// and the position the reader has read through (so a partition that got no
// records still moves its checkpoint).
type replayBatch struct {
	recs    []event.Record
	through uint64
}

// read deals the log after the lowest partition checkpoint out to the
// partitions, skipping what each has already applied.
func (rp *replay) read(ctx context.Context, src store.Store, parts []uint64, chans []chan replayBatch) error {
	keyer, _ := rp.p.(Partitioner)
	n := uint64(len(parts))
	bufs := make([][]event.Record, len(parts))
	for k := range bufs {
		bufs[k] = make([]event.Record, 0, 2*replayChunk/len(parts))
	}
	send := func(through uint64) error {
		for k, c := range chans {
			select {
			case c <- replayBatch{recs: bufs[k], through: through}:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case b := <-rp.free:
				bufs[k] = b[:0]
			default:
				bufs[k] = make([]event.Record, 0, 2*replayChunk/len(parts))
			}
		}
		return nil
	}
	var last uint64 // the last position read
	count := 0
	var filter store.Filter
	if sel, ok := rp.p.(Selective); ok {
		filter.Types = sel.EventTypes()
	}
	// The keyer sees each record through one reused pointer: passing &rec
	// to an interface method would move every record to the heap.
	var keyed *event.Record
	if keyer != nil {
		keyed = new(event.Record)
	}
	for rec, err := range src.ReadAll(ctx, store.ReadAllOptions{After: rp.from, Filter: filter}) {
		if err != nil {
			return fmt.Errorf("projection %s: replay: read: %w", rp.name, err)
		}
		if rec.Position > rp.until {
			break
		}
		var k uint64
		if keyer != nil {
			*keyed = rec
			k = hashKey(keyer.PartitionKey(keyed)) % n
		} else {
			k = hashKey(rec.Stream) % n
		}
		if rec.Position > parts[k] {
			bufs[k] = append(bufs[k], rec)
		}
		last = rec.Position
		if count++; count == replayChunk {
			if err := send(last); err != nil {
				return err
			}
			count = 0
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return send(rp.until)
}

// hashKey is FNV-1a: partitions must not move between runs (a resumed
// replay relies on them), so no per-process seed.
func hashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// work prepares partition k's events as they come and applies them with the
// partition's checkpoint every FlushEvery events, and at the end.
func (rp *replay) work(ctx context.Context, k int, in <-chan replayBatch) error {
	if f, ok := rp.p.(Folding); ok {
		return rp.fold(ctx, k, f.NewFold, in)
	}
	recs := make([]event.Record, 0, rp.opts.FlushEvery)
	var preps []any
	if _, ok := rp.p.(PreparingProjection); ok {
		preps = make([]any, 0, rp.opts.FlushEvery)
	}
	flush := func(through uint64) error {
		err := rp.commit(ctx, k, recs, preps, through)
		clear(preps) // let the prepared values go
		recs, preps = recs[:0], preps[:0]
		return err
	}
	return rp.drain(ctx, k, in, func(rec *event.Record) (bool, error) {
		e := prepareEntry(rp.p, rp.opts.Registry, *rec)
		if e.err != nil {
			return false, e.err
		}
		recs = append(recs, e.rec)
		if preps != nil {
			preps = append(preps, e.prep)
		}
		return len(recs) == rp.opts.FlushEvery, nil
	}, flush)
}

// drain hands partition k's records to add, in order, and calls flush
// through a record when add says the batch is full (every event of the
// partition up to it is in the batch), and through the target at the end.
func (rp *replay) drain(ctx context.Context, k int, in <-chan replayBatch, add func(*event.Record) (bool, error), flush func(through uint64) error) error {
	for b := range in {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for i := range b.recs {
			rec := &b.recs[i]
			full, err := add(rec)
			if err != nil {
				return fmt.Errorf("projection %s: replay partition %d, event %d (%s): %w", rp.name, k, rec.Position, rec.Type, err)
			}
			if full {
				if err := flush(rec.Position); err != nil {
					return err
				}
			}
		}
		select {
		case rp.free <- b.recs:
		default:
		}
		if b.through == rp.until {
			if err := flush(b.through); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// foldWrite is a partition's fold, ready to be written with the
// partition's checkpoint.
type foldWrite struct {
	k           int
	fold        Fold
	n           int    // events folded
	first, last uint64 // positions of the first and last of them
	through     uint64 // the partition's new checkpoint
}

// writeFolds writes the workers' folds, each with its partition's
// checkpoint, in the order they come (so each partition's in order).
func (rp *replay) writeFolds(ctx context.Context) error {
	for {
		select {
		case w, ok := <-rp.writes:
			if !ok {
				return nil
			}
			err := rp.commitWith(ctx, w.k, w.n, w.through, func(tx *sql.Tx) error {
				if err := w.fold.Write(ctx, tx); err != nil {
					return fmt.Errorf("projection %s: replay partition %d, events %d..%d: %w", rp.name, w.k, w.first, w.last, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fold is work for a Folding projection: events are folded as they come,
// and every FlushEvery events, and at the end, the fold goes to writeFolds
// while the worker starts a new one.
func (rp *replay) fold(ctx context.Context, k int, newFold func() Fold, in <-chan replayBatch) error {
	fold, n, first, last := newFold(), 0, uint64(0), uint64(0)
	flush := func(through uint64) error {
		select {
		case rp.writes <- foldWrite{k: k, fold: fold, n: n, first: first, last: last, through: through}:
		case <-ctx.Done():
			return ctx.Err()
		}
		fold, n = newFold(), 0
		return nil
	}
	return rp.drain(ctx, k, in, func(rec *event.Record) (bool, error) {
		if err := upcast(rp.opts.Registry, rec); err != nil {
			return false, err
		}
		if err := fold.Add(rec); err != nil {
			return false, err
		}
		if n == 0 {
			first = rec.Position
		}
		last = rec.Position
		n++
		return n == rp.opts.FlushEvery, nil
	}, flush)
}

func (rp *replay) commit(ctx context.Context, k int, recs []event.Record, preps []any, through uint64) error {
	return rp.commitWith(ctx, k, len(recs), through, func(tx *sql.Tx) error {
		if len(recs) == 0 {
			return nil
		}
		if err := applyBatch(ctx, tx, rp.p, recs, preps); err != nil {
			return fmt.Errorf("projection %s: replay partition %d, events %d..%d: %w", rp.name, k, recs[0].Position, recs[len(recs)-1].Position, err)
		}
		return nil
	})
}

// commitWith runs apply and moves partition k's checkpoint to through, in
// one transaction; n is the number of events it applies.
func (rp *replay) commitWith(ctx context.Context, k, n int, through uint64, apply func(*sql.Tx) error) error {
	ctx = context.WithoutCancel(ctx) // see Runner.commit
	tx, err := rp.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection %s: replay partition %d: %w", rp.name, k, err)
	}
	defer tx.Rollback()
	if err := apply(tx); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE strata_replay_partitions SET position = $1 WHERE projection = $2 AND partition = $3 AND position <= $4`, through, rp.name, k, through)
	if err != nil {
		return fmt.Errorf("projection %s: replay partition %d: checkpoint: %w", rp.name, k, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err == nil {
			err = errCheckpointMoved
		}
		return fmt.Errorf("projection %s: replay partition %d: %w", rp.name, k, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection %s: replay partition %d: commit: %w", rp.name, k, err)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.done[k] = through
	rp.applied += uint64(n)
	if rp.opts.Progress != nil {
		pos := rp.until
		for _, d := range rp.done {
			pos = min(pos, d)
		}
		rp.opts.Progress(ReplayProgress{Position: pos, From: rp.from, Until: rp.until, Applied: rp.applied})
	}
	return nil
}

// setupTables creates the runtime's tables, extra, and the projection's.
func setupTables(ctx context.Context, db *sql.DB, p Projection, extra string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Once begun, the setup runs to its end: database/sql rolls back a
	// transaction whose context is cancelled, and the Commit would then
	// fail with sql.ErrTxDone instead of saying the caller stopped.
	ctx = context.WithoutCancel(ctx)
	if isPostgres(db) {
		err := inSetupLock(ctx, db, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, postgresRuntimeDDL); err != nil {
				return err
			}
			return p.Setup(ctx, tx)
		})
		if err != nil {
			return fmt.Errorf("projection %s: setup: %w", p.Name(), err)
		}
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection %s: setup: %w", p.Name(), err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, runtimeDDL+extra); err != nil {
		return fmt.Errorf("projection %s: setup: %w", p.Name(), err)
	}
	if err := p.Setup(ctx, tx); err != nil {
		return fmt.Errorf("projection %s: setup: %w", p.Name(), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection %s: setup: %w", p.Name(), err)
	}
	return nil
}

// loadPartitions returns the partition checkpoints of an unfinished replay
// (nil if there is none) and its target.
func loadPartitions(ctx context.Context, db *sql.DB, name string) ([]uint64, uint64, error) {
	rows, err := db.QueryContext(ctx, `SELECT partition, partitions, until, position FROM strata_replay_partitions WHERE projection = $1 ORDER BY partition`, name)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var parts []uint64
	var until uint64
	for rows.Next() {
		var k, n int
		var u, pos uint64
		if err := rows.Scan(&k, &n, &u, &pos); err != nil {
			return nil, 0, err
		}
		if parts == nil {
			parts, until = make([]uint64, n), u
		}
		if k < 0 || k >= len(parts) || n != len(parts) || u != until {
			return nil, 0, fmt.Errorf("inconsistent partition checkpoints (partition %d of %d, target %d)", k, n, u)
		}
		parts[k] = pos
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return parts, until, nil
}

func startPartitions(ctx context.Context, db *sql.DB, name string, parts []uint64, until uint64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for k, pos := range parts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO strata_replay_partitions (projection, partition, partitions, until, position) VALUES ($1, $2, $3, $4, $5)`,
			name, k, len(parts), until, pos); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// finishPartitions makes the replay's target the projection's checkpoint
// and forgets the partitions, in one transaction.
func finishPartitions(ctx context.Context, db *sql.DB, name string, base, until uint64, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := advanceCheckpoint(ctx, tx, name, base, until, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM strata_replay_partitions WHERE projection = $1`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// applyEntries hands prepared entries to the projection, in tx.
func applyEntries(ctx context.Context, tx *sql.Tx, p Projection, entries []entry) error {
	recs := make([]event.Record, len(entries))
	var preps []any
	if _, ok := p.(PreparingProjection); ok {
		preps = make([]any, len(entries))
	}
	n := 0
	for i := range entries {
		if entries[i].skip {
			continue
		}
		if entries[i].err != nil {
			return entries[i].err
		}
		recs[n] = entries[i].rec
		if preps != nil {
			preps[n] = entries[i].prep
		}
		n++
	}
	if n == 0 {
		return nil // another partition's events: only the checkpoint moves
	}
	if preps != nil {
		preps = preps[:n]
	}
	return applyBatch(ctx, tx, p, recs[:n], preps)
}

// applyBatch hands events (and for a PreparingProjection, what Prepare made
// of them) to the projection, in tx.
func applyBatch(ctx context.Context, tx *sql.Tx, p Projection, recs []event.Record, preps []any) error {
	if pp, ok := p.(PreparingProjection); ok {
		return pp.ApplyPrepared(ctx, tx, recs, preps)
	}
	return p.Apply(ctx, tx, recs)
}

// errReplayUnfinished is returned by a Runner started on a projection
// whose parallel replay has not finished: its checkpoint says nothing yet.
var errReplayUnfinished = errors.New("projection: a parallel replay of this projection is unfinished; run Replay to finish it")
