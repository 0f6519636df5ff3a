package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

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
		for i := 0; ; i++ {
			if i%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					yield(event.Record{}, err)
					return
				}
			}
			var r event.Record
			ok, err := c.read(v, &r)
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			if !ok {
				return
			}
			if !opts.Filter.Match(&r) {
				continue
			}
			if !yield(r, nil) {
				return
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return
			}
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
		last, ok, err := l.lastLoc(stream, v.head)
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
			if from == 0 || from > last.version {
				from = last.version
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
			chunk := ctxCheckEvery
			if remaining > 0 && remaining < chunk {
				chunk = remaining
			}
			locs, err := l.streamLocs(v, stream, from, opts.Backwards, chunk)
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			for _, lc := range locs {
				r, err := l.readAt(v, lc)
				if err != nil {
					yield(event.Record{}, err)
					return
				}
				if !yield(r, nil) {
					return
				}
			}
			if remaining > 0 {
				if remaining -= len(locs); remaining == 0 {
					return
				}
			}
			if len(locs) < chunk {
				return
			}
			if opts.Backwards {
				from = locs[len(locs)-1].version - 1
				if from == 0 {
					return
				}
			} else {
				from = locs[len(locs)-1].version + 1
			}
		}
	}
}

// lastLoc finds the stream's last record at or before head.
func (l *Log) lastLoc(stream string, head uint64) (loc, bool, error) {
	// Tail first, then Pebble: see tailIndex.
	if locs := l.tail.snapshot(stream, head); len(locs) > 0 {
		return locs[len(locs)-1], true, nil
	}
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.dbMu.closed {
		return loc{}, false, store.ErrClosed
	}
	return lastIndexed(l.db, stream, head)
}

// streamLocs returns up to n locations of the stream's records starting at
// version from, going up (or down when backwards), within view v.
func (l *Log) streamLocs(v *view, stream string, from uint64, backwards bool, n int) ([]loc, error) {
	tail := l.tail.snapshot(stream, v.head)
	// Versions below tailFirst come from Pebble, the rest from the tail copy.
	tailFirst := uint64(1<<64 - 1)
	if len(tail) > 0 {
		tailFirst = tail[0].version
	}
	var out []loc
	fromTail := func() {
		if len(tail) == 0 {
			return
		}
		if backwards {
			for i := len(tail) - 1; i >= 0 && len(out) < n; i-- {
				if tail[i].version <= from {
					out = append(out, tail[i])
				}
			}
			return
		}
		for i := 0; i < len(tail) && len(out) < n; i++ {
			if tail[i].version >= from {
				out = append(out, tail[i])
			}
		}
	}
	if backwards {
		fromTail() // walks down to tailFirst unless n is reached first
		if hi := min(from, tailFirst-1); len(out) < n && hi >= 1 {
			more, err := l.indexedLocs(stream, 1, hi, true, n-len(out), v.head)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
		return out, nil
	}
	if from < tailFirst {
		more, err := l.indexedLocs(stream, from, tailFirst-1, false, n, v.head)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	if len(out) < n {
		fromTail()
	}
	return out, nil
}

// indexedLocs reads stream entries with versions in [lo, hi] from Pebble.
func (l *Log) indexedLocs(stream string, lo, hi uint64, backwards bool, n int, head uint64) ([]loc, error) {
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.dbMu.closed {
		return nil, store.ErrClosed
	}
	upper := streamKey(stream, hi)
	upper = append(upper, 0) // inclusive of hi
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: streamKey(stream, lo), UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []loc
	valid := it.First()
	step := it.Next
	if backwards {
		valid, step = it.Last(), it.Prev
	}
	for ; valid && len(out) < n; valid = step() {
		lc, err := decodeLoc(it.Key(), it.Value())
		if err != nil {
			return nil, err
		}
		if lc.pos > head {
			continue // indexed after v was taken
		}
		out = append(out, lc)
	}
	return out, it.Error()
}

// readAt reads the one record at lc.
func (l *Log) readAt(v *view, lc loc) (event.Record, error) {
	seg := v.segs[v.findSegment(lc.pos)]
	end := v.segEnd(v.findSegment(lc.pos))
	want := min(int64(512), end-lc.off)
	var r event.Record
	for {
		if want < frameHeaderSize {
			return r, &CorruptionError{Segment: seg.name, Offset: lc.off, Reason: "indexed record lies past the end of the segment"}
		}
		buf := make([]byte, want)
		if _, err := seg.r.ReadAt(buf, lc.off); err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, os.ErrClosed) {
				return r, store.ErrClosed
			}
			return r, fmt.Errorf("eventlog: read segment %s at %d: %w", seg.name, lc.off, err)
		}
		_, _, err := decodeFrame(buf, maxBody, &r)
		if err == errShortFrame {
			n, ferr := frameLen(buf, maxBody)
			if ferr != nil || int64(n) <= want || lc.off+int64(n) > end {
				return r, &CorruptionError{Segment: seg.name, Offset: lc.off, Reason: "frame extends past the end of the segment's data"}
			}
			want = int64(n)
			continue
		}
		if err != nil {
			return r, &CorruptionError{Segment: seg.name, Offset: lc.off, Reason: err.Error()}
		}
		if r.Position != lc.pos {
			return r, &CorruptionError{Segment: seg.name, Offset: lc.off,
				Reason: fmt.Sprintf("index points at position %d, record has %d", lc.pos, r.Position)}
		}
		return r, nil
	}
}
