package eventlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/stratadb/strata/store"
)

// Log is the embedded event log. It implements store.Store; all methods are
// safe for concurrent use.
//
// Goroutines: the writer (writer.go) orders, checks and writes appends; the
// syncer (syncer.go) makes them durable, publishes them to readers and
// acknowledges them; the indexer (indexer.go) moves published records into
// Pebble. Readers never block the writer: they see immutable views.
type Log struct {
	dir  string
	opts Options

	lockFile *os.File
	db       *pebble.DB

	sparse sparseIndex
	tail   *tailIndex

	view   atomic.Pointer[view]
	notify atomic.Pointer[chan struct{}] // closed and replaced at each publication

	prealloc *preallocator

	queue  chan *appendReq
	syncCh chan *syncItem
	w      writerState // owned by the writer goroutine
	// inflight counts appends between entering the queue and leaving the
	// syncer: each of them is bound to reach the syncer in an item.
	// writerBlocked is set while the writer waits for the syncer. Both serve
	// gather (syncer.go).
	inflight      atomic.Int64
	writerBlocked atomic.Bool

	indexer indexerState
	indexed atomic.Uint64 // last position in Pebble
	synced  atomic.Uint64 // last position known to be fsynced
	syncs   atomic.Uint64 // fdatasync calls on segments
	syncNs  atomic.Int64  // time spent in them
	acked   atomic.Uint64 // appends acknowledged (successful or not)
	// syncBatches counts group commits by how many appends one fsync
	// covered (SyncBatchBounds).
	syncBatches [len(SyncBatchBounds) + 1]atomic.Uint64
	// indexChanges counts Pebble's finished flushes and compactions: the
	// writer's probe iterator is replaced after one (probe.go).
	indexChanges atomic.Uint64

	sticky atomic.Pointer[error] // first write or sync error

	// appendMu orders sends on queue against Close: appenders hold it shared
	// while they send, Close takes it exclusively to set closed, after which
	// nothing new reaches the queue and the writer can drain it.
	appendMu struct {
		sync.RWMutex
		closed bool
	}
	// dbMu guards Pebble against use after Close; readers hold it shared only
	// around index lookups, never while yielding to their caller.
	dbMu struct {
		sync.RWMutex
		closed bool
	}

	quit        chan struct{} // closed by Close: the writer drains and stops
	closedCh    chan struct{} // closed by Close: subscriptions end
	writerDone  chan struct{}
	syncerDone  chan struct{}
	indexerDone chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

var _ store.Store = (*Log)(nil)

// Open opens the log in dir, creating it if needed. It recovers from a crash
// (see doc.go), brings the stream index up to date, and refuses to open a
// corrupt log or one another process has open.
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("eventlog: create data directory: %w", err)
	}
	l := &Log{
		dir:         dir,
		opts:        opts,
		tail:        newTailIndex(),
		prealloc:    newPreallocator(),
		queue:       make(chan *appendReq, 4096),
		syncCh:      make(chan *syncItem, 64),
		quit:        make(chan struct{}),
		closedCh:    make(chan struct{}),
		writerDone:  make(chan struct{}),
		syncerDone:  make(chan struct{}),
		indexerDone: make(chan struct{}),
	}
	ch := make(chan struct{})
	l.notify.Store(&ch)
	l.indexer.wake = make(chan struct{}, 1)
	l.indexer.flush = make(chan chan struct{})

	lf, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open lock file: %w", err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %s (%v)", ErrLocked, dir, err)
	}
	l.lockFile = lf
	if err := l.openIndex(); err != nil {
		l.releaseFiles()
		return nil, err
	}
	if err := l.recover(); err != nil {
		l.releaseFiles()
		return nil, err
	}
	go l.prealloc.run()
	go l.runWriter()
	go l.runSyncer()
	go l.runIndexer()
	return l, nil
}

// indexCacheSize is the stream index's block cache. Pebble charges its
// memtables (up to 4 MiB each, two or more at a time while one is flushed)
// to the block cache, so with its default of 8 MiB a busy index caches
// nothing at all, and every lookup reads and checksums its blocks again.
const indexCacheSize = 64 << 20

func (l *Log) openIndex() error {
	opts := &pebble.Options{
		// The index is rebuilt from the log after a crash (doc.go, invariant
		// 5), so its WAL would only cost writes.
		DisableWAL: true,
		Logger:     discardPebbleLogger{},
		CacheSize:  indexCacheSize,
		EventListener: &pebble.EventListener{
			FlushEnd:      func(pebble.FlushInfo) { l.indexChanges.Add(1) },
			CompactionEnd: func(pebble.CompactionInfo) { l.indexChanges.Add(1) },
		},
	}
	// Bloom filters on whole keys, in every level (each inherits L0's
	// policy), for the writer's probe (probe.go). Tables written without
	// them, by an earlier version, are read as before until compacted.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	db, err := pebble.Open(filepath.Join(l.dir, "index"), opts)
	if err != nil {
		return fmt.Errorf("eventlog: open stream index: %w", err)
	}
	l.db = db
	return nil
}

// resetIndex throws the stream index away so it is rebuilt from the log.
func (l *Log) resetIndex() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("eventlog: close stream index: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(l.dir, "index")); err != nil {
		return fmt.Errorf("eventlog: remove stream index: %w", err)
	}
	return l.openIndex()
}

// releaseFiles closes what Open acquired when Open fails.
func (l *Log) releaseFiles() {
	if l.db != nil {
		l.db.Close()
	}
	if v := l.view.Load(); v != nil {
		for _, s := range v.segs {
			s.r.Close()
		}
	}
	if l.w.f != nil {
		l.w.f.Close()
	}
	l.lockFile.Close()
}

// Close stops accepting appends, waits for accepted ones to be acknowledged,
// fsyncs, persists the index and releases the directory. Subscriptions end
// with store.ErrClosed.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.appendMu.Lock()
		l.appendMu.closed = true
		l.appendMu.Unlock()
		close(l.closedCh)
		close(l.quit)
		<-l.writerDone
		<-l.syncerDone
		<-l.indexerDone
		l.prealloc.close()

		var errs []error
		if err := l.sticky.Load(); err != nil {
			errs = append(errs, *err)
		}
		l.dbMu.Lock()
		l.dbMu.closed = true
		if err := l.persistSynced(); err != nil {
			errs = append(errs, err)
		}
		if err := l.db.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("eventlog: flush stream index: %w", err))
		}
		if err := l.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("eventlog: close stream index: %w", err))
		}
		l.dbMu.Unlock()
		for _, s := range l.view.Load().segs {
			s.r.Close()
		}
		l.lockFile.Close()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// persistSynced records at Close that everything indexed is now fsynced
// (the final sync came after the indexer's last batch in the relaxed
// durability modes), so that the next open can tell damage from a torn write.
func (l *Log) persistSynced() error {
	indexed := l.indexed.Load()
	meta := indexMeta{indexed: indexed, streams: l.tail.indexedStreamCount(), synced: min(indexed, l.synced.Load())}
	if indexed == 0 {
		return nil
	}
	if err := l.db.Set(metaKey, meta.encode(), pebble.NoSync); err != nil {
		return fmt.Errorf("eventlog: persist index meta: %w", err)
	}
	return nil
}

func (l *Log) isClosed() bool {
	select {
	case <-l.closedCh:
		return true
	default:
		return false
	}
}

// Head returns the position of the last acknowledged event.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	if l.isClosed() {
		return 0, store.ErrClosed
	}
	return l.view.Load().head, nil
}

// Stats describes the log's size.
type Stats struct {
	Head     uint64 // last acknowledged position
	Streams  uint64 // streams with at least one event
	Segments int    // segment files
	Bytes    int64  // bytes in segment files
	Indexed  uint64 // last position the stream index has persisted
	// Appends and Syncs count acknowledged appends and segment fsyncs since
	// open: their ratio is how many appends group commit shares one fsync
	// among.
	Appends  uint64
	Syncs    uint64
	SyncTime time.Duration // total time spent in segment fsyncs
	// SyncBatches[i] counts the group commits whose fsync covered at most
	// SyncBatchBounds[i] appends (and more than the bound before); the
	// last counts those over the last bound.
	SyncBatches [len(SyncBatchBounds) + 1]uint64
}

// SyncBatchBounds are the upper bounds of Stats.SyncBatches' buckets.
var SyncBatchBounds = [...]int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

func (l *Log) countSyncBatch(appends int) {
	i := 0
	for i < len(SyncBatchBounds) && appends > SyncBatchBounds[i] {
		i++
	}
	l.syncBatches[i].Add(1)
}

// Stats returns the log's current size.
func (l *Log) Stats(ctx context.Context) (Stats, error) {
	if l.isClosed() {
		return Stats{}, store.ErrClosed
	}
	v := l.view.Load()
	s := Stats{Head: v.head, Segments: len(v.segs), Indexed: l.indexed.Load(), Appends: l.acked.Load(), Syncs: l.syncs.Load(), SyncTime: time.Duration(l.syncNs.Load())}
	for i := range v.segs {
		s.Bytes += v.segEnd(i)
	}
	for i := range l.syncBatches {
		s.SyncBatches[i] = l.syncBatches[i].Load()
	}
	s.Streams = l.tail.countStreams(v.head)
	return s, nil
}

func (l *Log) stickyErr() error {
	if p := l.sticky.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) setSticky(err error) {
	err = fmt.Errorf("eventlog: log is read-only after a write error: %w", err)
	l.sticky.CompareAndSwap(nil, &err)
	l.opts.Logger.Error("eventlog: write failed; refusing further appends", "err", err)
}

type discardPebbleLogger struct{}

func (discardPebbleLogger) Infof(string, ...any)  {}
func (discardPebbleLogger) Errorf(string, ...any) {}
func (discardPebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
