package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// ctxCheckEvery is how many records a read yields between context checks.
const ctxCheckEvery = 256

// ReadAll implements store.Store. It reads up to the head as it is when the
// read starts.
func (l *Log) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if l.isClosed() {
			yield(event.Record{}, store.ErrClosed)
			return
		}
		v := l.view.Load()
		c, err := l.seekCursor(v, opts.After+1)
		if err != nil {
			yield(event.Record{}, err)
			return
		}
		n := 0
		l.scan(ctx, c, v, opts.After, &opts.Filter, func(r event.Record, err error) bool {
			if !yield(r, err) || err != nil {
				return false
			}
			n++
			return opts.Limit <= 0 || n < opts.Limit
		})
	}
}

// scan yields the records c reads up to v's head that lie after position
// after and match f, checking every ctxCheckEvery records whether ctx is
// done or the log closed. It reports whether the caller's iteration goes on:
// false once yield returned false or an error was yielded. (The filter is a
// value, not a func: a record passed by pointer to a func value escapes,
// and one allocation per record costs ReadAll 40 % of its speed.)
func (l *Log) scan(ctx context.Context, c *cursor, v *view, after uint64, f *store.Filter, yield func(event.Record, error) bool) bool {
	for i := 0; ; i++ {
		if i%ctxCheckEvery == 0 {
			if err := l.subscriptionEnded(ctx); err != nil {
				yield(event.Record{}, err)
				return false
			}
		}
		var r event.Record
		ok, err := c.read(v, &r)
		if err != nil {
			yield(event.Record{}, err)
			return false
		}
		if !ok {
			return true
		}
		if r.Position > after && f.Match(&r) && !yield(r, nil) {
			return false
		}
	}
}

// ReadStream implements store.Store.
func (l *Log) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if err := event.ValidateStream(stream); err != nil {
			yield(event.Record{}, err)
			return
		}
		if l.isClosed() {
			yield(event.Record{}, store.ErrClosed)
			return
		}
		v := l.view.Load()
		last, ok, err := l.lastRun(stream, v.head)
		if err != nil {
			yield(event.Record{}, err)
			return
		}
		if !ok {
			yield(event.Record{}, fmt.Errorf("%w: %q", store.ErrStreamNotFound, stream))
			return
		}
		from := opts.From
		if opts.Backwards {
			if from == 0 || from > last.lastVersion() {
				from = last.lastVersion()
			}
		} else if from == 0 {
			from = 1
		}
		remaining := opts.Limit
		for {
			if err := ctx.Err(); err != nil {
				yield(event.Record{}, err)
				return
			}
			runs, err := l.streamRuns(v, stream, from, opts.Backwards, runsPerLookup)
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			for _, r := range runs {
				recs, err := l.readRun(v, r)
				if err != nil {
					yield(event.Record{}, err)
					return
				}
				if opts.Backwards {
					slices.Reverse(recs)
				}
				for i := range recs {
					if opts.Backwards && recs[i].Version > from || !opts.Backwards && recs[i].Version < from {
						continue
					}
					if !yield(recs[i], nil) {
						return
					}
					if remaining > 0 {
						if remaining--; remaining == 0 {
							return
						}
					}
				}
			}
			if len(runs) < runsPerLookup {
				return
			}
			end := runs[len(runs)-1]
			if opts.Backwards {
				if end.version == 1 {
					return
				}
				from = end.version - 1
			} else {
				from = end.lastVersion() + 1
			}
		}
	}
}

// runsPerLookup is how many runs ReadStream fetches from the index at once:
// the index lock is never held while records are yielded.
const runsPerLookup = 64

// lastRun finds the stream's last run published by head.
func (l *Log) lastRun(stream string, head uint64) (run, bool, error) {
	// Tail first, then Pebble: see tailIndex.
	if runs := l.tail.snapshot(stream, head); len(runs) > 0 {
		return runs[len(runs)-1], true, nil
	}
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.dbMu.closed {
		return run{}, false, store.ErrClosed
	}
	return lastIndexed(l.db, stream, head)
}

// streamRuns returns up to n runs of the stream within view v, in order,
// starting with the run that holds version from and going up (or down when
// backwards).
func (l *Log) streamRuns(v *view, stream string, from uint64, backwards bool, n int) ([]run, error) {
	tail := l.tail.snapshot(stream, v.head)
	// Runs starting below tailFirst come from Pebble, the rest from the
	// tail copy: Pebble may hold some tail runs too, but is never asked.
	tailFirst := uint64(math.MaxUint64)
	if len(tail) > 0 {
		tailFirst = tail[0].version
	}
	var out []run
	if backwards {
		for i := len(tail) - 1; i >= 0 && len(out) < n; i-- {
			if tail[i].version <= from {
				out = append(out, tail[i])
			}
		}
		if hi := min(from, tailFirst-1); len(out) < n && hi >= 1 {
			more, err := l.indexedRuns(stream, hi, true, tailFirst, n-len(out), v.head)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
		return out, nil
	}
	if from < tailFirst {
		more, err := l.indexedRuns(stream, from, false, tailFirst, n, v.head)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	for i := 0; i < len(tail) && len(out) < n; i++ {
		if tail[i].lastVersion() >= from {
			out = append(out, tail[i])
		}
	}
	return out, nil
}

// indexedRuns reads up to n runs from Pebble that start before version
// below, beginning with the run holding version from.
func (l *Log) indexedRuns(stream string, from uint64, backwards bool, below uint64, n int, head uint64) ([]run, error) {
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.dbMu.closed {
		return nil, store.ErrClosed
	}
	upper := streamKey(stream, below)
	if below == math.MaxUint64 {
		upper = prefixEnd(streamPrefix(stream))
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: streamPrefix(stream), UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	// The run holding from is the last one starting at or before it.
	valid := it.SeekLT(streamKey(stream, from+1))
	step := it.Prev
	if !backwards {
		step = it.Next
		if !valid {
			valid = it.First()
		}
	}
	var out, runs []run
	for ; valid && len(out) < n; valid = step() {
		runs, err = decodeRuns(it.Key(), it.Value(), runs[:0])
		if err != nil {
			return nil, err
		}
		if backwards {
			slices.Reverse(runs)
		}
		for _, r := range runs {
			if r.pos > head || !backwards && r.lastVersion() < from || backwards && r.version > from {
				continue // indexed after the view was taken, or outside the range
			}
			if len(out) < n {
				out = append(out, r)
			}
		}
	}
	return out, it.Error()
}

// readRun reads the records of one run with a single read.
func (l *Log) readRun(v *view, r run) ([]event.Record, error) {
	i := v.findSegment(r.pos)
	seg := v.segs[i]
	if end := v.segEnd(i); r.off+int64(r.size) > end {
		return nil, &CorruptionError{Segment: seg.name, Offset: r.off, Reason: "indexed run lies past the end of the segment"}
	}
	buf := make([]byte, r.size)
	if _, err := seg.r.ReadAt(buf, r.off); err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, os.ErrClosed) {
			return nil, store.ErrClosed
		}
		return nil, fmt.Errorf("eventlog: read segment %s at %d: %w", seg.name, r.off, err)
	}
	recs := make([]event.Record, r.count)
	off := 0
	for k := range recs {
		n, _, err := decodeFrame(buf[off:], maxBody, &recs[k])
		if err == nil && recs[k].Position != r.pos+uint64(k) {
			err = fmt.Errorf("index says position %d, record has %d", r.pos+uint64(k), recs[k].Position)
		}
		if err != nil {
			return nil, &CorruptionError{Segment: seg.name, Offset: r.off + int64(off), Reason: err.Error()}
		}
		off += n
	}
	return recs, nil
}
