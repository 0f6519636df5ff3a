package eventlog

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/stratadb/strata/event"
)

const (
	// indexBatch caps the runs per Pebble batch.
	indexBatch = 64 << 10
	// indexMinBatch and indexDelay: see runIndexer.
	indexMinBatch = 16 << 10
	indexDelay    = 20 * time.Millisecond
)

// indexerState hands published entries from the syncer to the indexer
// without ever blocking the syncer.
type indexerState struct {
	mu      sync.Mutex
	pending []indexEntry
	sparse  []sparsePoint
	wake    chan struct{}      // capacity 1: a pending signal is enough
	flush   chan chan struct{} // index everything pending now, then reply
}

func (s *indexerState) push(entries []indexEntry, sparse []sparsePoint) {
	s.mu.Lock()
	s.pending = append(s.pending, entries...)
	s.sparse = append(s.sparse, sparse...)
	s.mu.Unlock()
}

// requeue puts what could not be indexed back in front.
func (s *indexerState) requeue(entries []indexEntry, sparse []sparsePoint) {
	s.mu.Lock()
	s.pending = append(entries[:len(entries):len(entries)], s.pending...)
	s.sparse = append(sparse[:len(sparse):len(sparse)], s.sparse...)
	s.mu.Unlock()
}

func (s *indexerState) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *indexerState) pendingRuns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *indexerState) take() ([]indexEntry, []sparsePoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, sp := s.pending, s.sparse
	s.pending, s.sparse = nil, nil
	return p, sp
}

// runIndexer moves published entries into Pebble, off the acknowledgement
// path. It stops after the syncer has, having indexed everything published.
//
// It lets entries gather (up to indexDelay or indexMinBatch runs) before it
// writes: the more runs of one stream a batch holds, the fewer keys Pebble
// must sort, flush and compact. Readers do not wait for it (tail index).
func (l *Log) runIndexer() {
	defer close(l.indexerDone)
	timer := time.NewTimer(indexDelay)
	defer timer.Stop()
	for {
		var done chan struct{} // a flushIndex caller waiting
		select {
		case <-l.indexer.wake:
		case done = <-l.indexer.flush:
		case <-l.syncerDone:
			l.indexPending()
			return
		}
		if done == nil && l.indexer.pendingRuns() < indexMinBatch {
			timer.Reset(indexDelay)
			select {
			case <-timer.C:
			case done = <-l.indexer.flush:
			case <-l.syncerDone:
			}
		}
		l.indexPending()
		if done != nil {
			close(done)
		}
	}
}

// flushIndex indexes everything published so far and returns when Pebble
// holds it (tests use it to read through Pebble rather than the tail).
func (l *Log) flushIndex() {
	done := make(chan struct{})
	select {
	case l.indexer.flush <- done:
		<-done
	case <-l.indexerDone:
	}
}

func (l *Log) indexPending() {
	entries, sparse := l.indexer.take()
	for len(entries) > 0 {
		n := min(len(entries), indexBatch)
		if err := l.indexEntries(entries[:n], sparse); err != nil {
			// The log itself is fine; the index will be rebuilt at the next
			// open. Keep answering from the tail index meanwhile.
			l.opts.Logger.Error("eventlog: stream index write failed", "err", err)
			l.indexer.requeue(entries, sparse)
			return
		}
		entries, sparse = entries[n:], nil
	}
}

// indexEntries writes one batch of runs, contiguous in position and
// following the last indexed one, and sparse points, together with the meta
// key, then lets the tail index forget the runs. Sparse points past the
// batch are harmless: loadSparse ignores points past the meta's position.
func (l *Log) indexEntries(entries []indexEntry, sparse []sparsePoint) error {
	b := l.db.NewBatch()
	defer b.Close()
	streams := make(map[string]struct{})
	var newStreams uint64
	// Group each stream's runs (they arrive in version order) so that one
	// key holds several: see index.go.
	groups := make(map[string][]run)
	var order []string
	for i := range entries {
		e := &entries[i]
		if e.version == 1 {
			newStreams++
		}
		g, ok := groups[e.stream]
		if !ok {
			order = append(order, e.stream)
			streams[e.stream] = struct{}{}
		}
		groups[e.stream] = append(g, e.run)
	}
	var key, val []byte
	for _, stream := range order {
		for g := groups[stream]; len(g) > 0; {
			k := min(len(g), maxRunsPerKey)
			// Set copies key and value, so scratch buffers serve all.
			key = append(append(append(key[:0], prefixStream), stream...), 0)
			key = binary.BigEndian.AppendUint64(key, g[0].version)
			val = val[:0]
			for _, r := range g[:k] {
				val = appendRunValue(val, r)
			}
			if err := b.Set(key, val, nil); err != nil {
				return err
			}
			g = g[k:]
		}
	}
	for _, p := range sparse {
		if err := b.Set(sparseKey(p.pos), encodeOff(p.off), nil); err != nil {
			return err
		}
	}
	last := entries[len(entries)-1].lastPos()
	meta := indexMeta{indexed: last, streams: l.tail.indexedStreamCount() + newStreams, synced: min(last, l.synced.Load())}
	if err := b.Set(metaKey, meta.encode(), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("eventlog: index commit: %w", err)
	}
	l.indexed.Store(last)
	l.tail.trim(streams, last, newStreams)
	return nil
}

// catchUpIndex indexes the records from position from to the head, reading
// them from the segments; an append's records end with the commit flag,
// which is how its run is found again. Open runs it before the log accepts
// appends, so the tail index starts empty.
func (l *Log) catchUpIndex(from uint64) error {
	v := l.view.Load()
	if from > v.head {
		return nil
	}
	c, err := l.seekCursor(v, from)
	if err != nil {
		return err
	}
	var batch []indexEntry
	var sparse []sparsePoint
	var cur *indexEntry // the run being gathered
	for {
		var r event.Record
		off, flags, ok, err := c.readFrame(v, &r)
		if err != nil {
			return err
		}
		if ok {
			if cur == nil {
				batch = append(batch, indexEntry{stream: r.Stream, run: run{version: r.Version, pos: r.Position, off: off}})
				cur = &batch[len(batch)-1]
			}
			cur.count++
			cur.size = uint32(c.off - cur.off)
			if sparseWants(r.Position, c.seg.base) {
				sparse = append(sparse, sparsePoint{pos: r.Position, off: off})
			}
			if flags&flagCommit != 0 {
				cur = nil
			}
		}
		if cur == nil && (len(batch) >= indexBatch || !ok && len(batch) > 0) {
			if err := l.indexEntries(batch, sparse); err != nil {
				return err
			}
			batch, sparse = batch[:0], sparse[:0]
		}
		if !ok {
			return nil
		}
	}
}
