package storetest_test

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/store/storetest"
)

// memStore is a deliberately simple store.Store: one mutex over a slice of
// records (index = position-1) and a map of streams. It exists to check the
// suite against a store that is obviously right, and the suite's mutants
// (bugs, below) against one that is obviously wrong.
//
// Appends copy the caller's buffers and only ever add to the slices, never
// change an element, so a read takes slice headers under the lock and
// iterates them after releasing it. Subscribers wait on mu.changed, a
// channel closed and replaced by every append and by Close.
type memStore struct {
	maxSize int
	bugs    memBugs
	data    *memData // shared with the memStores that reopen it

	mu struct {
		sync.Mutex
		closed  bool
		changed chan struct{}
	}
}

// memData is what survives Close: guarded by the mutex of the one memStore
// that has it open.
type memData struct {
	records []event.Record
	streams map[string][]memEntry // index = version-1
}

// memEntry is one event of a stream: where it is, and the versions of the
// first and last event of the append that wrote it, to recognise retries.
type memEntry struct {
	pos         uint64
	id          event.ID
	first, last uint64
}

// memBugs are deliberate defects for checking that the suite catches them.
type memBugs struct {
	noIdempotency    bool // a retry is appended again
	retryAnyPlace    bool // known ids anywhere in the stream count as a retry
	checkThenAct     bool // the version check and the write are two critical sections
	subscribeGap     bool // the first record appended while history is yielded is skipped
	sizeDataOnly     bool // the size limit counts Data only
	keepBuffers      bool // records share the caller's Data
	limitBeforeMatch bool // ReadAll applies Limit before the filter
	backwardsExclude bool // ReadStream backwards skips the From version
}

const memMaxEventSize = 1 << 20

func newMemStore(data *memData, bugs memBugs) *memStore {
	s := &memStore{maxSize: memMaxEventSize, bugs: bugs, data: data}
	s.mu.changed = make(chan struct{})
	return s
}

var _ store.Store = (*memStore)(nil)

func (s *memStore) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return store.AppendResult{}, err
	}
	if err := event.ValidateStream(stream); err != nil {
		return store.AppendResult{}, err
	}
	if len(events) == 0 {
		return store.AppendResult{}, fmt.Errorf("%w: no events to append", event.ErrInvalid)
	}
	ids := make(map[event.ID]bool, len(events))
	for i := range events {
		e := &events[i]
		if err := e.Validate(); err != nil {
			return store.AppendResult{}, fmt.Errorf("event %d: %w", i, err)
		}
		size := e.Size()
		if s.bugs.sizeDataOnly {
			size = len(e.Data)
		}
		if size > s.maxSize {
			return store.AppendResult{}, fmt.Errorf("%w: event %d is %d bytes, at most %d allowed", store.ErrEventTooLarge, i, size, s.maxSize)
		}
		if !e.ID.IsZero() {
			if ids[e.ID] {
				return store.AppendResult{}, fmt.Errorf("%w: event id %v appears twice in one append", event.ErrInvalid, e.ID)
			}
			ids[e.ID] = true
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return store.AppendResult{}, store.ErrClosed
	}
	entries := s.data.streams[stream]
	if res, ok := s.retryLocked(entries, expected, events); ok {
		return res, nil
	}
	version := uint64(len(entries))
	if !expected.Check(version) {
		return store.AppendResult{}, &store.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: version}
	}
	if s.bugs.checkThenAct { // let another append in between check and write
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
		if s.mu.closed {
			return store.AppendResult{}, store.ErrClosed
		}
	}
	return s.writeLocked(stream, version, events), nil
}

// retryLocked recognises a retry: events whose ids were appended, as one
// append, at the place expected names (for Any and StreamExists: as the
// stream's last events). It returns that append's result.
func (s *memStore) retryLocked(entries []memEntry, expected store.ExpectedVersion, events []event.Event) (store.AppendResult, bool) {
	if s.bugs.noIdempotency {
		return store.AppendResult{}, false
	}
	n := uint64(len(events))
	first, ok := expected.Version()
	first++
	if !ok {
		first = uint64(len(entries)) - n + 1 // underflows when n > len: caught below
	}
	if s.bugs.retryAnyPlace {
		for i, e := range entries {
			if e.id == events[0].ID {
				first = uint64(i) + 1
			}
		}
	}
	if n > uint64(len(entries)) || first < 1 || first+n-1 > uint64(len(entries)) {
		return store.AppendResult{}, false
	}
	batch := entries[first-1 : first-1+n]
	if batch[0].first != first || batch[n-1].last != first+n-1 {
		return store.AppendResult{}, false
	}
	for i, e := range batch {
		if e.id != events[i].ID {
			return store.AppendResult{}, false
		}
	}
	return store.AppendResult{Version: first + n - 1, FirstPosition: batch[0].pos, LastPosition: batch[n-1].pos}, true
}

func (s *memStore) writeLocked(stream string, version uint64, events []event.Event) store.AppendResult {
	d := s.data
	now := time.Now()
	n := uint64(len(events))
	firstPos := uint64(len(d.records)) + 1
	for i, e := range events {
		if e.ID.IsZero() {
			e.ID = event.NewID()
		}
		if !s.bugs.keepBuffers {
			e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
		}
		r := event.Record{Event: e, Stream: stream, Version: version + uint64(i) + 1, Position: firstPos + uint64(i), Time: now}
		d.records = append(d.records, r)
		d.streams[stream] = append(d.streams[stream], memEntry{pos: r.Position, id: e.ID, first: version + 1, last: version + n})
	}
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
	return store.AppendResult{Version: version + n, FirstPosition: firstPos, LastPosition: firstPos + n - 1}
}

// snapshot returns the records and a stream's entries as they are now, and
// the channel the next append will close.
func (s *memStore) snapshot(stream string) ([]event.Record, []memEntry, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, nil, nil, store.ErrClosed
	}
	return s.data.records, s.data.streams[stream], s.mu.changed, nil
}

func (s *memStore) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(event.Record{}, err)
			return
		}
		records, entries, _, err := s.snapshot(stream)
		if err != nil {
			yield(event.Record{}, err)
			return
		}
		if len(entries) == 0 {
			yield(event.Record{}, fmt.Errorf("%w: %q", store.ErrStreamNotFound, stream))
			return
		}
		n := uint64(len(entries))
		from, step, stop := max(opts.From, 1), uint64(1), n+1
		if opts.Backwards {
			from, step, stop = opts.From, ^uint64(0), 0 // step -1
			if from == 0 || from > n {
				from = n
			}
			if s.bugs.backwardsExclude && opts.From != 0 {
				from--
			}
		}
		yielded := 0
		for v := from; v != stop && v >= 1 && v <= n; v += step {
			if opts.Limit > 0 && yielded == opts.Limit {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(event.Record{}, err)
				return
			}
			if !yield(records[entries[v-1].pos-1], nil) {
				return
			}
			yielded++
		}
	}
}

func (s *memStore) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(event.Record{}, err)
			return
		}
		records, _, _, err := s.snapshot("")
		if err != nil {
			yield(event.Record{}, err)
			return
		}
		yielded, seen := 0, 0
		for i := opts.After; i < uint64(len(records)); i++ {
			if err := ctx.Err(); err != nil {
				yield(event.Record{}, err)
				return
			}
			if seen++; s.bugs.limitBeforeMatch && opts.Limit > 0 && seen > opts.Limit {
				return
			}
			r := records[i]
			if !opts.Filter.Match(&r) {
				continue
			}
			if opts.Limit > 0 && yielded == opts.Limit {
				return
			}
			if !yield(r, nil) {
				return
			}
			yielded++
		}
	}
}

func (s *memStore) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		after := opts.After // position of the last record handled
		for round := 0; ; round++ {
			records, _, changed, err := s.snapshot("")
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			if s.bugs.subscribeGap && round == 1 && after < uint64(len(records)) {
				// Going live loses the first record appended while the
				// history was yielded.
				after++
			}
			for ; after < uint64(len(records)); after++ {
				if err := ctx.Err(); err != nil {
					yield(event.Record{}, err)
					return
				}
				r := records[after]
				if opts.Filter.Match(&r) && !yield(r, nil) {
					return
				}
			}
			select {
			case <-ctx.Done():
				yield(event.Record{}, ctx.Err())
				return
			case <-changed:
			}
		}
	}
}

func (s *memStore) Head(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, store.ErrClosed
	}
	return uint64(len(s.data.records)), nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.closed {
		s.mu.closed = true
		close(s.mu.changed)
	}
	return nil
}

// memBugEnv names a bug (a field of memBugs, see mutants) for TestMemStore
// to plant; mutant tests set it for a child test process.
const memBugEnv = "STORETEST_MEMSTORE_BUG"

func TestMemStore(t *testing.T) {
	var bugs memBugs
	if name := os.Getenv(memBugEnv); name != "" {
		m, ok := mutants[name]
		if !ok {
			t.Fatalf("%s=%q: no such bug", memBugEnv, name)
		}
		bugs = m.bugs
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			return newMemStore(&memData{streams: map[string][]memEntry{}}, bugs)
		},
		Reopen: func(t *testing.T, closed store.Store) store.Store {
			return newMemStore(closed.(*memStore).data, bugs)
		},
		Features: storetest.Features{Reopen: true, MaxEventSize: memMaxEventSize},
	})
}
