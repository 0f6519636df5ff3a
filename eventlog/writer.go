package eventlog

import (
	"fmt"
	"os"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// writerState is owned by the writer goroutine (and by recovery before the
// writer starts); nothing else touches it.
type writerState struct {
	seg       *segment
	f         *os.File // write handle of seg
	off       int64    // where the next write goes in seg
	next      uint64   // position of the next record
	lastNanos int64    // record times never go backwards
	heads     map[string]*streamHead
	probe     streamProbe // writerHead's index lookups
	buf       []byte
	item      *syncItem // being filled; handed to the syncer by flush
}

// streamHead is the writer's view of a stream, including written but not yet
// published appends.
type streamHead struct {
	version uint64
	pos     uint64   // position of the last event
	lastID  event.ID // id of the last event, for recognising retries
}

// syncItem is a run of requests written to one segment, handed from the
// writer to the syncer. Failed requests ride along so that every result,
// success or not, reaches its caller only after everything written before it
// is published: a caller told "wrong expected version" can at once read the
// version that beat it.
type syncItem struct {
	seg     *segment
	f       *os.File
	seal    bool   // seg is full: fsync and close f after this item
	final   bool   // the log is closing: fsync (in every mode) and close f
	head    uint64 // last position written by this item (or before it)
	start   int64  // offset in seg where this item's data begins
	end     int64  // end offset in seg after this item
	reqs    []*appendReq
	entries []indexEntry
	sparse  []sparsePoint
}

// runWriter is the only goroutine that writes segments. It takes every
// request waiting in the queue (up to MaxBatchBytes), checks and orders them,
// writes them with one write call and hands them to the syncer: while the
// syncer fsyncs one batch the writer is already gathering the next, which is
// what makes group commit pay off.
func (l *Log) runWriter() {
	defer close(l.writerDone)
	defer l.w.probe.close() // before Close closes Pebble
	defer close(l.syncCh)
	var batch []*appendReq
	for {
		l.releaseStaleProbe()
		var first *appendReq
		select {
		case first = <-l.queue:
		case <-l.quit:
			// appendMu guarantees nothing new arrives: drain what is queued.
			for {
				select {
				case r := <-l.queue:
					l.writeBatch([]*appendReq{r})
				default:
					// Leave no zero-filled tail behind a clean close.
					l.prealloc.stop()
					if err := l.w.f.Truncate(l.w.off); err != nil && l.stickyErr() == nil {
						l.setSticky(fmt.Errorf("truncate segment %s: %w", l.w.seg.name, err))
					}
					l.ensureItem()
					l.w.item.final = true
					l.flush()
					return
				}
			}
		}
		batch = append(batch[:0], first)
		bytes := len(first.frames)
	gather:
		for bytes < l.opts.MaxBatchBytes {
			select {
			case r := <-l.queue:
				batch = append(batch, r)
				bytes += len(r.frames)
			default:
				break gather
			}
		}
		l.writeBatch(batch)
		clear(batch)
	}
}

func (l *Log) writeBatch(batch []*appendReq) {
	w := &l.w
	ns := l.opts.Now().UnixNano()
	if ns < w.lastNanos {
		ns = w.lastNanos
	}
	w.lastNanos = ns
	for _, r := range batch {
		l.writeOne(r, ns)
	}
	l.flush()
}

// writeOne checks r against the stream's head and, if it passes, adds its
// sealed frames to the write buffer.
func (l *Log) writeOne(r *appendReq, ns int64) {
	w := &l.w
	// r joins the item last: the retry check and roll below may flush the
	// item, and r must not be acknowledged before its result is set.
	defer func() {
		l.ensureItem()
		w.item.reqs = append(w.item.reqs, r)
	}()
	if err := l.stickyErr(); err != nil {
		r.err = err // failed like everything after the first write error
		return
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err // not written: no outcome to be unsure about
		return
	}
	h, err := l.writerHead(r.stream)
	if err != nil {
		r.err = err
		return
	}
	if res, ok, err := l.retried(r, h); err != nil {
		r.err = err
		return
	} else if ok {
		r.res = res
		return
	}
	if !r.expected.Check(h.version) {
		r.err = &store.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: h.version}
		return
	}
	if w.off+int64(len(w.buf)) > segmentHeaderSize && w.off+int64(len(w.buf)+len(r.frames)) > l.opts.SegmentSize {
		// r goes to the next segment: an append never spans two.
		if err := l.roll(); err != nil {
			r.err = err
			return
		}
	}
	l.ensureItem()

	n := len(r.ids)
	first := w.next
	base := w.off + int64(len(w.buf))
	frames := r.frames
	for i, p := 0, 0; i < n; i++ {
		var flags byte
		if i == n-1 {
			flags = flagCommit
		}
		pos, ver := w.next, h.version+1+uint64(i)
		size := sealFrame(frames[p:], pos, ver, ns, flags)
		if sparseWants(pos, w.seg.base) {
			w.item.sparse = append(w.item.sparse, sparsePoint{pos: pos, off: base + int64(p)})
		}
		p += size
		w.next++
	}
	w.item.entries = append(w.item.entries, indexEntry{stream: r.stream, run: run{
		version: h.version + 1, pos: first, off: base, count: uint32(n), size: uint32(len(frames)),
	}})
	w.buf = append(w.buf, frames...)
	r.frames = nil
	h.version += uint64(n)
	h.pos = w.next - 1
	h.lastID = r.ids[n-1]
	r.res = store.AppendResult{Version: h.version, FirstPosition: first, LastPosition: w.next - 1}
}

func (l *Log) ensureItem() {
	w := &l.w
	if w.item == nil {
		w.item = &syncItem{seg: w.seg, f: w.f, head: w.next - 1, start: w.off, end: w.off}
	}
}

// flush writes the buffer and hands the current item to the syncer.
func (l *Log) flush() { l.flushSync(false) }

// flushSync is flush that, with seal, also cuts the segment's zero-filled
// tail and fsyncs it before the syncer sees the item (see roll).
func (l *Log) flushSync(seal bool) {
	w := &l.w
	it := w.item
	if it == nil {
		return
	}
	w.item = nil
	if len(w.buf) > 0 && l.stickyErr() == nil {
		end := w.off + int64(len(w.buf))
		l.prealloc.beforeWrite(w.f, w.off, end)
		if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
			l.setSticky(fmt.Errorf("write segment %s: %w", w.seg.name, err))
		}
		w.off = end
	}
	w.buf = w.buf[:0]
	if cap(w.buf) > 2*l.opts.MaxBatchBytes {
		w.buf = nil // one huge append must not pin its buffer for ever
	}
	if seal && l.stickyErr() == nil {
		l.prealloc.stop()
		if err := w.f.Truncate(w.off); err != nil {
			l.setSticky(fmt.Errorf("truncate segment %s: %w", w.seg.name, err))
		} else if err := fdatasync(w.f); err != nil {
			l.setSticky(fmt.Errorf("sync segment %s: %w", w.seg.name, err))
		}
	}
	if err := l.stickyErr(); err != nil {
		for _, r := range it.reqs {
			if r.err == nil {
				r.err, r.res = err, store.AppendResult{}
			}
		}
		it.entries, it.sparse = nil, nil
	}
	it.head, it.end = w.next-1, w.off
	l.syncCh <- it
}

// roll seals the active segment and starts the next one. The sealed
// segment is cut to its data and fsynced before the next exists, whatever
// the durability mode: recovery treats damage anywhere but in the last
// segment as corruption, so a torn write or a zero-filled tail must never be
// left in a segment that is no longer last.
func (l *Log) roll() error {
	w := &l.w
	l.ensureItem()
	w.item.seal = true
	l.flushSync(true)
	if err := l.stickyErr(); err != nil {
		return err
	}
	w.seg.size = w.off // published to readers with the next view (syncer)
	f, seg, err := createSegment(l.dir, w.next, l.opts.Now(), l.opts.SegmentSize)
	if err != nil {
		l.setSticky(err)
		return l.stickyErr()
	}
	w.f, w.seg, w.off = f, seg, segmentHeaderSize
	l.prealloc.start(f, segmentHeaderSize, l.preallocLimit())
	return nil
}

// preallocLimit is how far the preallocator fills a segment. Only fsyncs
// profit from preallocation, and zero-filling costs as much CPU as writing
// the data: without SyncAlways it is off.
func (l *Log) preallocLimit() int64 {
	if l.opts.Durability != SyncAlways {
		return 0
	}
	return l.opts.SegmentSize
}

// writerHead returns the writer's head of stream, loading it from the index
// the first time the stream is appended to since open. Heads are never
// evicted: the probe relies on it (probe.go).
func (l *Log) writerHead(stream string) (*streamHead, error) {
	w := &l.w
	if h, ok := w.heads[stream]; ok {
		return h, nil
	}
	// Every append since open went through heads, so the published index
	// is complete for this stream. Most streams seen here for the first
	// time are new: the probe tells those apart cheaply (probe.go).
	indexed, err := l.indexedBeforeOpen(stream)
	if err != nil {
		return nil, err
	}
	h := &streamHead{}
	if indexed {
		v := l.view.Load()
		last, ok, err := l.lastRun(stream, v.head)
		if err != nil {
			return nil, err
		}
		if ok {
			recs, err := l.readRun(v, last)
			if err != nil {
				return nil, err
			}
			h.version, h.pos, h.lastID = last.lastVersion(), last.lastPos(), recs[len(recs)-1].ID
		}
	}
	w.heads[stream] = h
	return h, nil
}

// retried recognises the retry of an append that already happened: the same
// ids at the same place. For an exact expected version the place is fixed;
// for Any and StreamExists it is the end of the stream.
func (l *Log) retried(r *appendReq, h *streamHead) (store.AppendResult, bool, error) {
	if !r.userIDs {
		return store.AppendResult{}, false, nil
	}
	n := uint64(len(r.ids))
	var start uint64 // the stream's version just before the original append
	if v, exact := r.expected.Version(); exact {
		if h.version < v+n {
			return store.AppendResult{}, false, nil
		}
		start = v
	} else {
		if h.version < n || h.lastID != r.ids[n-1] {
			return store.AppendResult{}, false, nil
		}
		start = h.version - n
	}
	// The original may be written but not yet published: wait for it.
	if err := l.waitPublished(h.pos); err != nil {
		return store.AppendResult{}, false, err
	}
	// The original append is one run: version start+1, n events.
	v := l.view.Load()
	runs, err := l.streamRuns(v, r.stream, start+1, false, 1)
	if err != nil || len(runs) == 0 || runs[0].version != start+1 || runs[0].count != uint32(n) {
		return store.AppendResult{}, false, err
	}
	recs, err := l.readRun(v, runs[0])
	if err != nil {
		return store.AppendResult{}, false, err
	}
	for i := range recs {
		if recs[i].ID != r.ids[i] {
			return store.AppendResult{}, false, nil
		}
	}
	return store.AppendResult{Version: start + n, FirstPosition: runs[0].pos, LastPosition: runs[0].lastPos()}, true, nil
}

// waitPublished flushes what the writer holds and blocks until the syncer
// has published pos. Only the rare retry path uses it.
func (l *Log) waitPublished(pos uint64) error {
	// The syncer must not wait for this writer while it waits here. The
	// flag is set before the item goes out, and an item always goes out, so
	// a syncer already waiting for the writer wakes up and sees it.
	l.writerBlocked.Store(true)
	defer l.writerBlocked.Store(false)
	l.ensureItem()
	l.flush()
	for {
		ch := l.notify.Load()
		if l.view.Load().head >= pos {
			return nil
		}
		if err := l.stickyErr(); err != nil {
			return err
		}
		<-*ch
	}
}
