package eventlog

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/stratadb/strata/event"
)

// indexBatch caps the entries per Pebble batch.
const indexBatch = 32 << 10

// indexerState hands published entries from the syncer to the indexer
// without ever blocking the syncer.
type indexerState struct {
	mu      sync.Mutex
	pending []indexEntry
	wake    chan struct{} // capacity 1: a pending signal is enough
}

func (s *indexerState) push(entries []indexEntry) {
	if len(entries) == 0 {
		return
	}
	s.mu.Lock()
	s.pending = append(s.pending, entries...)
	s.mu.Unlock()
}

// requeue puts entries that could not be indexed back in front.
func (s *indexerState) requeue(entries []indexEntry) {
	s.mu.Lock()
	s.pending = append(entries[:len(entries):len(entries)], s.pending...)
	s.mu.Unlock()
}

func (s *indexerState) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *indexerState) take() []indexEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	s.pending = nil
	return p
}

// runIndexer moves published entries into Pebble, off the acknowledgement
// path. It stops after the syncer has, having indexed everything published.
func (l *Log) runIndexer() {
	defer close(l.indexerDone)
	for {
		select {
		case <-l.indexer.wake:
		case <-l.syncerDone:
			l.indexPending()
			return
		}
		l.indexPending()
	}
}

func (l *Log) indexPending() {
	entries := l.indexer.take()
	for len(entries) > 0 {
		n := min(len(entries), indexBatch)
		if err := l.indexEntries(entries[:n]); err != nil {
			// The log itself is fine; the index will be rebuilt at the next
			// open. Keep answering from the tail index meanwhile.
			l.opts.Logger.Error("eventlog: stream index write failed", "err", err)
			l.indexer.requeue(entries)
			return
		}
		entries = entries[n:]
	}
}

// indexEntries writes one batch of entries, contiguous in position and
// following the last indexed one, together with the meta key, then lets the
// tail index forget them.
func (l *Log) indexEntries(entries []indexEntry) error {
	b := l.db.NewBatch()
	defer b.Close()
	streams := make(map[string]struct{})
	var newStreams uint64
	v := l.view.Load()
	var key []byte
	var val [16]byte
	for i := range entries {
		e := &entries[i]
		// Set copies key and value, so one scratch buffer serves all.
		key = append(append(append(key[:0], prefixStream), e.stream...), 0)
		key = binary.BigEndian.AppendUint64(key, e.version)
		binary.BigEndian.PutUint64(val[0:], e.pos)
		binary.BigEndian.PutUint64(val[8:], uint64(e.off))
		if err := b.Set(key, val[:], nil); err != nil {
			return err
		}
		if e.version == 1 {
			newStreams++
		}
		if sparseWants(e.pos, v.segs[v.findSegment(e.pos)].base) {
			if err := b.Set(sparseKey(e.pos), encodeOff(e.off), nil); err != nil {
				return err
			}
		}
		if _, ok := streams[e.stream]; !ok {
			streams[e.stream] = struct{}{}
		}
	}
	last := entries[len(entries)-1]
	prev := l.tail.indexedStreamCount()
	meta := indexMeta{indexed: last.pos, resumeOff: last.end, streams: prev + newStreams}
	if err := b.Set(metaKey, meta.encode(), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("eventlog: index commit: %w", err)
	}
	l.indexed.Store(last.pos)
	l.tail.trim(streams, last.pos, newStreams)
	return nil
}

// catchUpIndex indexes the records between the index's last position and
// the head, reading them from the segments. Open runs it before the log
// accepts appends, so the tail index starts empty.
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
	for {
		var r event.Record
		off, _, ok, err := c.readFrame(v, &r)
		if err != nil {
			return err
		}
		if ok {
			batch = append(batch, indexEntry{stream: r.Stream, loc: loc{version: r.Version, pos: r.Position, off: off}, end: c.off})
		}
		if len(batch) == indexBatch || !ok && len(batch) > 0 {
			if err := l.indexEntries(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if !ok {
			return nil
		}
	}
}
