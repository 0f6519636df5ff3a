package cli

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// memStore is a deliberately simple in-memory store.Store (plus Stats) that
// the command tests run against while the real log is not there.
type memStore struct {
	mu       sync.Mutex
	records  []event.Record
	versions map[string]uint64
	changed  chan struct{} // closed and replaced on every append, to wake subscribers
	calls    int           // Append calls
	expected []store.ExpectedVersion
	closed   bool
	subs     int // Subscribe loops started
	now      time.Time
}

func newMemStore() *memStore {
	return &memStore{
		versions: map[string]uint64{},
		changed:  make(chan struct{}),
		now:      time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC),
	}
}

var _ store.Store = (*memStore)(nil)

func (m *memStore) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	m.expected = append(m.expected, expected)
	if m.closed {
		return store.AppendResult{}, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return store.AppendResult{}, err
	}
	cur := m.versions[stream]
	if !expected.Check(cur) {
		return store.AppendResult{}, &store.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: cur}
	}
	res := store.AppendResult{FirstPosition: uint64(len(m.records)) + 1}
	for _, e := range events {
		if e.ID.IsZero() {
			e.ID = event.NewID()
		}
		cur++
		m.records = append(m.records, event.Record{
			Event:    e,
			Stream:   stream,
			Version:  cur,
			Position: uint64(len(m.records)) + 1,
			Time:     m.now,
		})
	}
	m.versions[stream] = cur
	res.Version, res.LastPosition = cur, uint64(len(m.records))
	close(m.changed)
	m.changed = make(chan struct{})
	return res, nil
}

func (m *memStore) snapshot() ([]event.Record, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.records[:len(m.records):len(m.records)], m.changed
}

func (m *memStore) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		all, _ := m.snapshot()
		var recs []event.Record
		for _, r := range all {
			if r.Stream == stream {
				recs = append(recs, r)
			}
		}
		if len(recs) == 0 {
			yield(event.Record{}, store.ErrStreamNotFound)
			return
		}
		n := 0
		emit := func(r event.Record) bool {
			if opts.Limit > 0 && n == opts.Limit {
				return false
			}
			n++
			return yield(r, nil)
		}
		if opts.Backwards {
			for i := len(recs) - 1; i >= 0; i-- {
				if (opts.From == 0 || recs[i].Version <= opts.From) && !emit(recs[i]) {
					return
				}
			}
			return
		}
		for _, r := range recs {
			if r.Version >= opts.From && !emit(r) {
				return
			}
		}
	}
}

func (m *memStore) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		all, _ := m.snapshot()
		n := 0
		for _, r := range all {
			if r.Position <= opts.After || !opts.Filter.Match(&r) {
				continue
			}
			if opts.Limit > 0 && n == opts.Limit {
				return
			}
			n++
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (m *memStore) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		m.mu.Lock()
		m.subs++
		m.mu.Unlock()
		after := opts.After
		for {
			all, changed := m.snapshot()
			for _, r := range all[min(after, uint64(len(all))):] {
				after = r.Position
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

func (m *memStore) subscribers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subs
}

func (m *memStore) Head(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.records)), nil
}

func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *memStore) Stats(ctx context.Context) (eventlog.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return eventlog.Stats{Head: uint64(len(m.records)), Streams: uint64(len(m.versions)), Segments: 1, Bytes: 4096, Indexed: uint64(len(m.records))}, nil
}

// fakeEnv is an Env over memStores, one per directory, reopened as they
// were left, as a real log would be.
type fakeEnv struct {
	mu       sync.Mutex
	stores   map[string]*memStore
	opened   []string
	opts     []eventlog.Options
	env      map[string]string
	verify   func(ctx context.Context, dir string) (eventlog.VerifyReport, error)
	verified []string
}

func newFakeEnv() *fakeEnv {
	return &fakeEnv{stores: map[string]*memStore{}, env: map[string]string{}}
}

func (f *fakeEnv) Env() Env {
	return Env{
		Getenv: func(k string) string { return f.env[k] },
		Open: func(dir string, opts eventlog.Options) (store.Store, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.opened = append(f.opened, dir)
			f.opts = append(f.opts, opts)
			s := f.stores[dir]
			if s == nil {
				s = newMemStore()
				f.stores[dir] = s
			}
			s.mu.Lock()
			s.closed = false
			s.mu.Unlock()
			return s, nil
		},
		Verify: func(ctx context.Context, dir string) (eventlog.VerifyReport, error) {
			f.verified = append(f.verified, dir)
			if f.verify == nil {
				return eventlog.VerifyReport{}, fmt.Errorf("no verify in this test")
			}
			return f.verify(ctx, dir)
		},
	}
}

// store returns the store of dir, creating it as Open would.
func (f *fakeEnv) store(dir string) *memStore {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stores[dir] == nil {
		f.stores[dir] = newMemStore()
	}
	return f.stores[dir]
}

type result struct {
	code           int
	stdout, stderr string
}

// run executes one command line against f with stdin as input.
func (f *fakeEnv) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return f.runCtx(t, context.Background(), stdin, args...)
}

func (f *fakeEnv) runCtx(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(ctx, f.Env(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}
