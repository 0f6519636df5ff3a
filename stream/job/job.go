package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratadb/strata/stream"
)

// Input is one event for the engines.
type Input[V any] struct {
	Key   string
	Time  int64 // event time, epoch milliseconds
	Value V
}

// Item is an input at a position of its source. Positions increase; a
// resumed job reads the items after its checkpoint's position. Skip marks a
// position that carries no input (a record of another type): it still moves
// the job's position.
type Item[V any] struct {
	Pos   uint64
	Input Input[V]
	Skip  bool
}

// Source yields the items after position after, in order. A bounded source
// ends (the job then fires everything, as at a watermark of +∞); a live one
// runs until ctx ends.
type Source[V any] interface {
	Items(ctx context.Context, after uint64) iter.Seq2[Item[V], error]
}

// Output is a result, or a late event, with the input position that caused
// it: the event itself, or the event whose arrival moved the watermark that
// fired the window.
type Output[V, R any] struct {
	Pos       uint64
	Partition int
	// byWatermark: fired when the watermark reached fireAt (Pos is then
	// the position whose event moved it there).
	byWatermark bool
	fireAt      int64
	Result      stream.Result[R] // when !Late
	Late        bool
	Event       Input[V] // when Late
}

// ID identifies the output deterministically: the result's ID, or for a
// late event its position.
func (o *Output[V, R]) ID() string {
	if o.Late {
		return fmt.Sprintf("late/%d", o.Pos)
	}
	return o.Result.ID()
}

// Sink takes a job's outputs, a batch per checkpoint interval, in the
// job's deterministic order.
type Sink[V, R any] interface {
	Write(ctx context.Context, outs []Output[V, R]) error
}

// Committer is a Sink that can make what it has written durable and go
// back to such a point after a crash: with it, a restarted job writes
// exactly the output of an uninterrupted run.
type Committer interface {
	// Sync makes every write so far durable and returns a mark for it.
	Sync(ctx context.Context) (mark []byte, err error)
	// Rewind drops whatever was written after mark (nil: everything).
	Rewind(ctx context.Context, mark []byte) error
}

// Job is one windowed computation over a source.
type Job[V, A, R any] struct {
	// Name identifies the job's checkpoint.
	Name   string
	Window stream.Config
	Agg    stream.Aggregator[V, A, R]
	// MaxOutOfOrder bounds how late, in event time, inputs may arrive:
	// the watermark is the largest time seen − MaxOutOfOrder − 1 (Flink's
	// bounded out-of-orderness). Default 0.
	MaxOutOfOrder int64
	// Partitions is the number of engines (goroutines) keys are spread
	// over by hash. Default GOMAXPROCS. A checkpoint is only valid for the
	// partition count that took it.
	Partitions int
	// Share, when its Count is above 1, makes this run one of Count
	// shares of the job (on several nodes, say): it computes the windows
	// of the keys that hash to its Index, each share with its own
	// checkpoint, while every input still moves its event time on, so that
	// the shares' windows close together. Their outputs, keyed apart, can
	// go to one stream.
	Share Share
	// Dir holds the job's checkpoint; empty: no checkpoints (unless
	// Checkpoints is set).
	Dir string
	// Checkpoints, when set, keeps the checkpoint instead of a file in Dir.
	Checkpoints CheckpointStore
	// FlushEvery is how many source items an output interval holds:
	// outputs wait in memory, to be put in order, until its end. Default
	// 10,000.
	FlushEvery int
	// CheckpointEvery is how many source items go between checkpoints
	// (each snapshots every engine). Default 100,000. The end of a bounded
	// source, and an output interval a live source ended by
	// FlushInterval, are checkpointed too.
	CheckpointEvery int
	// FlushInterval bounds, for a live source, how long outputs wait for
	// the end of their interval. Default 200 ms.
	FlushInterval time.Duration
	// Progress, if set, is called after each output interval.
	Progress func(Progress)
}

// Progress reports a finished output interval.
type Progress struct {
	Checkpoint bool   // the interval ended with a checkpoint
	Position   uint64 // the last source position done
	Watermark  int64
	Results    uint64 // results written in all
	Late       uint64 // late events written in all
	Keys       int    // keys holding state
}

// batchSize is how many items the reader gathers for a partition before
// sending them: one channel operation per batch, not per event.
const batchSize = 1024

// partitionOf spreads keys with FNV-1a: keys must land in the same
// partition in every run, which a checkpoint relies on (so no per-process
// seed).
// Share is share Index (0-based) of Count of a job's keys.
type Share struct {
	Index, Count int
}

// owns reports whether key is this share's (every key, with one share).
// The hash differs from partitionOf's, so that a share's keys still
// spread over its engines.
func (s Share) owns(key string) bool {
	if s.Count <= 1 {
		return true
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	// splitmix64's finaliser: partitionOf takes h modulo the engine count,
	// and h's low bits would put all of a share's keys on some engines.
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	h ^= h >> 31
	return int(h%uint64(s.Count)) == s.Index
}

func partitionOf(key string, n int) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

type item[V any] struct {
	pos uint64
	in  Input[V]
	wm  int64 // the watermark before this input
}

type barrier struct {
	checkpoint bool
	seq        uint64
	pos        uint64
	maxTs      int64
	wm         int64
	final      bool
}

// advance is a watermark move: the event at pos moved it to wm.
type advance struct {
	pos uint64
	wm  int64
}

// msg is what the reader sends a partition: items, then maybe a barrier.
type msg[V any] struct {
	items   []item[V]
	barrier *barrier
}

type partDone[V, R any] struct {
	seq  uint64
	part int
	outs []Output[V, R]
	snap []byte
	keys int
	b    barrier
}

// ErrCheckpoint is wrapped by errors reading or matching a checkpoint.
var ErrCheckpoint = errors.New("job: bad checkpoint")

// Run runs the job over src into sink until src ends (after firing
// everything) or ctx ends. It resumes from the job's checkpoint if Dir has
// one.
func (j *Job[V, A, R]) Run(ctx context.Context, src Source[V], sink Sink[V, R]) error {
	if err := j.Window.Validate(); err != nil {
		return err
	}
	if j.Name == "" {
		return errors.New("job: a job needs a name")
	}
	parts := j.Partitions
	if parts <= 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	every := j.FlushEvery
	if every <= 0 {
		every = 10_000
	}
	cpEvery := j.CheckpointEvery
	if cpEvery <= 0 {
		cpEvery = 100_000
	}
	flush := j.FlushInterval
	if flush <= 0 {
		flush = 200 * time.Millisecond
	}

	engines := make([]*stream.Engine[V, A, R], parts)
	st := readerState{Wm: stream.MinTime - 1, MaxTs: stream.MinTime - 1}
	cps := j.checkpoints()
	var cp *checkpoint
	if cps != nil {
		var err error
		if cp, err = loadCheckpoint(ctx, cps, j.Name); err != nil {
			return err
		}
	}
	if cp != nil {
		if !cp.Window.Equal(j.Window) || len(cp.Engines) != parts || cp.MaxOutOfOrder != j.MaxOutOfOrder {
			return fmt.Errorf("%w: job %s was checkpointed with window %+v, %d partitions, max out-of-order %d; it runs with %+v, %d, %d (start it under another name or in another directory)",
				ErrCheckpoint, j.Name, cp.Window, len(cp.Engines), cp.MaxOutOfOrder, j.Window, parts, j.MaxOutOfOrder)
		}
		for k, b := range cp.Engines {
			e, err := stream.Restore(j.Window, j.Agg, b)
			if err != nil {
				return fmt.Errorf("job %s: partition %d: %w", j.Name, k, err)
			}
			engines[k] = e
		}
		st = cp.Reader
		if st.Done {
			return nil // ran to the end of a bounded source already
		}
	} else {
		for k := range engines {
			e, err := stream.New(j.Window, j.Agg)
			if err != nil {
				return err
			}
			engines[k] = e
		}
	}
	if c, ok := sink.(Committer); ok {
		var mark []byte
		if cp != nil {
			mark = cp.SinkMark
		}
		if err := c.Rewind(ctx, mark); err != nil {
			return fmt.Errorf("job %s: rewind sink: %w", j.Name, err)
		}
	}

	g, ctx := errgroup.WithContext(ctx)
	ins := make([]chan msg[V], parts)
	for k := range ins {
		ins[k] = make(chan msg[V], 4)
	}
	// One channel per partition: the coordinator takes barrier s from
	// each before barrier s+1 from any.
	done := make([]chan partDone[V, R], parts)
	for k := range done {
		done[k] = make(chan partDone[V, R], 1)
	}
	advs := make(chan []advance, 4)
	for k := range parts {
		g.Go(func() error { return j.partition(ctx, k, engines[k], ins[k], done[k]) })
	}
	g.Go(func() error { return j.coordinate(ctx, parts, cp, sink, done, advs) })
	g.Go(func() error {
		defer func() {
			for _, c := range ins {
				close(c)
			}
		}()
		return j.read(ctx, src, st, parts, every, cpEvery, flush, ins, advs)
	})
	return g.Wait()
}

// readerState is what the reader checkpoints: where it is and what the
// watermark generator has seen.
type readerState struct {
	Pos   uint64
	MaxTs int64
	Wm    int64
	Seq   uint64 // barriers so far
	Done  bool   // the bounded source ended and everything fired
}

// read deals the source's items to the partitions with the watermark before
// each, and puts a barrier in every partition's input every `every` items
// (and, for a live source, when flush has passed since items came); a
// barrier asks for a checkpoint once cpEvery items have passed since the
// last one, at the end, and at barriers of a quiet live source.
func (j *Job[V, A, R]) read(ctx context.Context, src Source[V], st readerState, parts, every, cpEvery int, flush time.Duration, ins []chan msg[V], advs chan<- []advance) error {
	sinceCheckpoint := 0
	bufs := make([][]item[V], parts)
	var moves []advance // this interval's watermark moves
	// One input: the source. (The generator also takes several, idle ones
	// left out, for sources split into partitions of their own.)
	wms := stream.NewWatermarks(1, j.MaxOutOfOrder)
	if st.MaxTs >= stream.MinTime {
		wms.Observe(0, st.MaxTs)
	}
	send := func(k int, b *barrier) error {
		select {
		case ins[k] <- msg[V]{items: bufs[k], barrier: b}:
		case <-ctx.Done():
			return ctx.Err()
		}
		bufs[k] = make([]item[V], 0, batchSize)
		return nil
	}
	sendBarrier := func(final, checkpoint bool) error {
		st.Seq++
		if checkpoint {
			sinceCheckpoint = 0
		}
		b := &barrier{checkpoint: checkpoint, seq: st.Seq, pos: st.Pos, maxTs: st.MaxTs, wm: st.Wm, final: final}
		select {
		case advs <- moves:
		case <-ctx.Done():
			return ctx.Err()
		}
		moves = nil
		for k := range parts {
			if err := send(k, b); err != nil {
				return err
			}
		}
		return nil
	}
	// Items come from their own goroutine so that a live source's quiet
	// spells can still end an interval (flush).
	type next struct {
		it  Item[V]
		err error
	}
	h := newHandoff[next](4 * batchSize)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer h.close()
		for it, err := range src.Items(rctx, st.Pos) {
			if !h.put(rctx, next{it, err}) || err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(flush)
	defer timer.Stop()
	n, pending := 0, false
	var batch []next
	for {
		var closed bool
		batch, closed = h.take(batch)
		if closed {
			break
		}
		if len(batch) == 0 {
			select {
			case <-h.wake:
			case <-timer.C:
				if pending {
					if err := sendBarrier(false, true); err != nil {
						return err
					}
					n, pending = 0, false
				}
				timer.Reset(flush)
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		for _, nx := range batch {
			if nx.err != nil {
				return fmt.Errorf("job %s: read after position %d: %w", j.Name, st.Pos, nx.err)
			}
			it := nx.it
			if it.Pos <= st.Pos {
				return fmt.Errorf("job %s: source went back from position %d to %d", j.Name, st.Pos, it.Pos)
			}
			st.Pos = it.Pos
			if !it.Skip && !j.Share.owns(it.Input.Key) {
				// Another share's input still moves event time on, so
				// that this share's windows close when the job's do.
				st.MaxTs = max(st.MaxTs, it.Input.Time)
				if w, moved := wms.Observe(0, it.Input.Time); moved {
					st.Wm = w
					moves = append(moves, advance{it.Pos, w})
				}
			} else if !it.Skip {
				k := partitionOf(it.Input.Key, parts)
				bufs[k] = append(bufs[k], item[V]{pos: it.Pos, in: it.Input, wm: st.Wm})
				st.MaxTs = max(st.MaxTs, it.Input.Time)
				if w, moved := wms.Observe(0, it.Input.Time); moved {
					st.Wm = w
					moves = append(moves, advance{it.Pos, w})
				}
				if len(bufs[k]) == batchSize {
					if err := send(k, nil); err != nil {
						return err
					}
				}
			}
			pending = true
			sinceCheckpoint++
			if n++; n == every {
				if err := sendBarrier(false, sinceCheckpoint >= cpEvery); err != nil {
					return err
				}
				n, pending = 0, false
			}
		}
		clear(batch)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// A bounded source ended: the final watermark fires everything.
	st.Wm, st.Done = stream.EndOfInput, true
	moves = append(moves, advance{st.Pos, stream.EndOfInput})
	return sendBarrier(true, true)
}

// partition runs one engine over its items.
func (j *Job[V, A, R]) partition(ctx context.Context, k int, e *stream.Engine[V, A, R], in <-chan msg[V], done chan<- partDone[V, R]) error {
	var outs []Output[V, R]
	collect := func(pos uint64, byWatermark bool) {
		for _, r := range e.Ready() {
			outs = append(outs, Output[V, R]{Pos: pos, Partition: k, Result: r, byWatermark: byWatermark, fireAt: r.Window.End - 1})
		}
		e.Advance()
	}
	for m := range in {
		for i := range m.items {
			it := &m.items[i]
			if it.wm > e.CurrentWatermark() {
				e.Watermark(it.wm)
				collect(0, true)
			}
			late, err := e.Event(it.in.Key, it.in.Time, it.in.Value)
			if err != nil {
				return fmt.Errorf("job %s: position %d: %w", j.Name, it.pos, err)
			}
			collect(it.pos, false)
			if late {
				outs = append(outs, Output[V, R]{Pos: it.pos, Partition: k, Late: true, Event: it.in})
			}
		}
		if b := m.barrier; b != nil {
			if b.wm > e.CurrentWatermark() {
				e.Watermark(b.wm)
				collect(0, true)
			}
			d := partDone[V, R]{seq: b.seq, part: k, outs: outs, b: *b, keys: e.Stats().Keys}
			if j.checkpoints() != nil && b.checkpoint {
				snap, err := e.Snapshot()
				if err != nil {
					return fmt.Errorf("job %s: partition %d: %w", j.Name, k, err)
				}
				d.snap = snap
			}
			select {
			case done <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
			outs = nil
		}
	}
	return nil
}

// coordinate gathers each barrier from every partition, writes the
// interval's outputs in order, and checkpoints.
func (j *Job[V, A, R]) coordinate(ctx context.Context, parts int, cp *checkpoint, sink Sink[V, R], done []chan partDone[V, R], advs <-chan []advance) error {
	snaps := make([][]byte, parts)
	var results, late uint64
	if cp != nil {
		results, late = cp.Results, cp.Late
	}
	got := 0
	var outs []Output[V, R]
	keys := 0
	for {
		var d partDone[V, R]
		select {
		case d = <-done[got]:
		case <-ctx.Done():
			return ctx.Err()
		}
		outs = append(outs, d.outs...)
		snaps[d.part] = d.snap
		keys += d.keys
		if got++; got < parts {
			continue
		}
		// Every partition passed barrier d.seq. A result the watermark
		// fired is caused by the event that first moved the watermark to
		// its time; where a partition happened to learn of the move
		// (before its next event, or at a barrier) does not matter.
		var moves []advance
		select {
		case moves = <-advs:
		case <-ctx.Done():
			return ctx.Err()
		}
		for i := range outs {
			o := &outs[i]
			if !o.byWatermark {
				continue
			}
			m, _ := slices.BinarySearchFunc(moves, o.fireAt, func(a advance, t int64) int { return cmp.Compare(a.wm, t) })
			if m == len(moves) {
				return fmt.Errorf("job %s: partition %d fired %v at %d, past the watermark", j.Name, o.Partition, o.Result.Window, o.fireAt)
			}
			o.Pos = moves[m].pos
		}
		// Sort by cause: the event's own outputs first, then what the
		// watermark it moved fired, in order of time, then by partition.
		// Stable, so each partition's order stands among equals.
		slices.SortStableFunc(outs, func(a, b Output[V, R]) int {
			return cmp.Or(cmp.Compare(a.Pos, b.Pos), boolCmp(a.byWatermark, b.byWatermark),
				cmp.Compare(a.fireAt, b.fireAt), cmp.Compare(a.Partition, b.Partition))
		})
		if len(outs) > 0 {
			if err := sink.Write(ctx, outs); err != nil {
				return fmt.Errorf("job %s: sink: %w", j.Name, err)
			}
		}
		for i := range outs {
			if outs[i].Late {
				late++
			} else {
				results++
			}
		}
		b := d.b
		cps := j.checkpoints()
		checkpointed := cps != nil && b.checkpoint
		if checkpointed {
			var mark []byte
			if c, ok := sink.(Committer); ok {
				var err error
				if mark, err = c.Sync(ctx); err != nil {
					return fmt.Errorf("job %s: sink: %w", j.Name, err)
				}
			}
			rs := readerState{Pos: b.pos, MaxTs: b.maxTs, Wm: b.wm, Seq: b.seq, Done: b.final}
			if err := saveCheckpoint(ctx, cps, &checkpoint{
				Job: j.Name, Window: j.Window, MaxOutOfOrder: j.MaxOutOfOrder,
				Reader: rs, Engines: snaps, SinkMark: mark, Results: results, Late: late,
			}); err != nil {
				return err
			}
		}
		if j.Progress != nil {
			j.Progress(Progress{Checkpoint: checkpointed, Position: b.pos, Watermark: b.wm, Results: results, Late: late, Keys: keys})
		}
		if b.final {
			return nil
		}
		clear(outs)
		outs, got, keys = outs[:0], 0, 0
		snaps = make([][]byte, parts)
	}
}

// checkpoints is where the job's checkpoint is kept, nil for nowhere.
func (j *Job[V, A, R]) checkpoints() CheckpointStore {
	switch {
	case j.Checkpoints != nil:
		return j.Checkpoints
	case j.Dir != "":
		return DirCheckpoints(j.Dir, j.Name)
	}
	return nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
