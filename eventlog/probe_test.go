package eventlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"pgregory.net/rapid"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// reopenWays are the states of the stream index a log can be reopened in:
// each leaves the streams created before in a different place when the
// writer first looks them up (probe.go).
var reopenWays = []struct {
	name   string
	reopen func(t fataler, l *Log, dir string, opts Options) *Log
}{
	{"clean", func(t fataler, l *Log, dir string, opts Options) *Log {
		// Close flushes Pebble: every stream key is in an sstable.
		mustClose(t, l)
		return mustReopen(t, dir, opts)
	}},
	{"index-rebuilt", func(t fataler, l *Log, dir string, opts Options) *Log {
		// Open rebuilds the index from the segments into a memtable,
		// which it must flush for the probe to see it.
		mustClose(t, l)
		if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
			t.Fatal(err)
		}
		return mustReopen(t, dir, opts)
	}},
}

// fataler is what the helpers need of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func mustClose(t fataler, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func mustReopen(t fataler, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func newEvents(n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: event.NewID(), Type: "t"}
	}
	return evs
}

// wantWrongVersion fails unless err says the stream is at version actual.
func wantWrongVersion(t fataler, err error, actual uint64) {
	t.Helper()
	var wev *store.WrongExpectedVersionError
	if !errors.Is(err, store.ErrWrongExpectedVersion) || !errors.As(err, &wev) || wev.Actual != actual {
		t.Fatalf("got %v, want a wrong expected version error with actual version %d", err, actual)
	}
}

// TestNoStreamAfterReopen: a stream created before the log was reopened
// exists for the writer after it, however the index holds it, and names
// around it (its prefixes and extensions) are still new.
func TestNoStreamAfterReopen(t *testing.T) {
	ctx := context.Background()
	for _, way := range reopenWays {
		t.Run(way.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Durability: SyncNone, SegmentSize: 1 << 20}
			l := mustReopen(t, dir, opts)
			created := newEvents(2)
			first, err := l.Append(ctx, "order-1", store.NoStream, created...)
			if err != nil {
				t.Fatal(err)
			}
			// More single-event appends than one index key holds, so the
			// stream has several keys in Pebble.
			for range maxRunsPerKey + 10 {
				if _, err := l.Append(ctx, "order-many", store.Any, newEvents(1)...); err != nil {
					t.Fatal(err)
				}
			}
			l = way.reopen(t, l, dir, opts)
			defer func() { mustClose(t, l) }()

			_, err = l.Append(ctx, "order-1", store.NoStream, newEvents(1)...)
			wantWrongVersion(t, err, 2)
			_, err = l.Append(ctx, "order-many", store.NoStream, newEvents(1)...)
			wantWrongVersion(t, err, maxRunsPerKey+10)
			// The retry of the append that created the stream is recognised.
			if again, err := l.Append(ctx, "order-1", store.NoStream, created...); err != nil || again != first {
				t.Fatalf("retry of the creation = %+v, %v; want %+v", again, err, first)
			}
			if res, err := l.Append(ctx, "order-1", store.Exactly(2), newEvents(1)...); err != nil || res.Version != 3 {
				t.Fatalf("Exactly(2) after reopen = %+v, %v", res, err)
			}
			for _, s := range []string{"order-", "order-10", "order-1-a", "order-manx", "order-many-2"} {
				if res, err := l.Append(ctx, s, store.NoStream, newEvents(1)...); err != nil || res.Version != 1 {
					t.Fatalf("NoStream to new stream %q = %+v, %v", s, res, err)
				}
			}
			_, err = l.Append(ctx, "never", store.StreamExists, newEvents(1)...)
			wantWrongVersion(t, err, 0)
		})
	}
}

// TestNewStreamsWhilePebbleChanges creates streams while the index moves
// from the tail to Pebble's memtable and on to sstables, flushed and
// compacted (each replacing the writer's probe iterator), and checks after
// each step that the writer still knows every stream.
func TestNewStreamsWhilePebbleChanges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{Durability: SyncNone, SegmentSize: 1 << 20}
	l := mustReopen(t, dir, opts)
	// Streams from before open, for the probe to find in sstables.
	for i := range 100 {
		if _, err := l.Append(ctx, fmt.Sprintf("old-%d", i), store.NoStream, newEvents(1)...); err != nil {
			t.Fatal(err)
		}
	}
	l = reopenWays[0].reopen(t, l, dir, opts)
	defer func() { mustClose(t, l) }()

	steps := []struct {
		name string
		do   func() error
	}{
		{"tail", func() error { return nil }},
		{"memtable", func() error { l.flushIndex(); return nil }},
		{"flushed", func() error { l.flushIndex(); return l.db.Flush() }},
		{"compacted", func() error {
			l.flushIndex()
			return l.db.Compact(ctx, []byte{prefixStream}, []byte{prefixStream + 1}, false)
		}},
	}
	n := 0
	for _, step := range steps {
		changes := l.indexChanges.Load()
		for range 50 {
			n++
			if _, err := l.Append(ctx, fmt.Sprintf("new-%d", n), store.NoStream, newEvents(1)...); err != nil {
				t.Fatalf("%s: create new-%d: %v", step.name, n, err)
			}
		}
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.name == "flushed" || step.name == "compacted" {
			if l.indexChanges.Load() == changes {
				t.Fatalf("%s: Pebble reported no flush or compaction", step.name)
			}
		}
		for i := 1; i <= n; i++ {
			_, err := l.Append(ctx, fmt.Sprintf("new-%d", i), store.NoStream, newEvents(1)...)
			wantWrongVersion(t, err, 1)
		}
		for i := range 100 {
			_, err := l.Append(ctx, fmt.Sprintf("old-%d", i), store.NoStream, newEvents(1)...)
			wantWrongVersion(t, err, 1)
		}
		if _, err := l.Append(ctx, fmt.Sprintf("old-%d", 100+n), store.NoStream, newEvents(1)...); err != nil {
			t.Fatalf("%s: a stream that does not exist: %v", step.name, err)
		}
	}
}

// TestExpectedVersionsMatchAModel checks every append's outcome (success
// and version, or the wrong expected version and the actual one) against a
// map of stream versions, while the streams' index entries move between
// the tail, Pebble's memtables and sstables, and the log is reopened with
// its index intact or rebuilt. Stream names are prefixes of each other.
func TestExpectedVersionsMatchAModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		dir := t.TempDir()
		opts := Options{Durability: SyncNone, SegmentSize: 64 << 10}
		l := mustReopen(rt, dir, opts)
		defer func() { l.Close() }()
		streams := []string{"a", "ab", "a-1", "a-10", "b"}
		versions := map[string]uint64{} // the model
		type done struct {
			stream   string
			expected store.ExpectedVersion
			evs      []event.Event
			res      store.AppendResult
		}
		var exact []done // successful appends with an exact expected version

		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 11).Draw(rt, "op"); op {
			case 0, 1, 2, 3, 4, 5: // append
				stream := rapid.SampledFrom(streams).Draw(rt, "stream")
				cur := versions[stream]
				expected := rapid.SampledFrom([]store.ExpectedVersion{
					store.NoStream, store.Any, store.StreamExists,
					store.Exactly(cur), store.Exactly(cur + 1), store.Exactly(max(cur, 1) - 1),
				}).Draw(rt, "expected")
				evs := newEvents(rapid.IntRange(1, 3).Draw(rt, "n"))
				res, err := l.Append(ctx, stream, expected, evs...)
				if !expected.Check(cur) {
					wantWrongVersion(rt, err, cur)
					continue
				}
				if err != nil || res.Version != cur+uint64(len(evs)) {
					rt.Fatalf("Append(%s, %s) at version %d = %+v, %v", stream, expected, cur, res, err)
				}
				versions[stream] = res.Version
				if _, ok := expected.Version(); ok {
					exact = append(exact, done{stream, expected, evs, res})
				}
			case 6: // retry an earlier append: the same result, nothing written
				if len(exact) == 0 {
					continue
				}
				d := exact[rapid.IntRange(0, len(exact)-1).Draw(rt, "retry")]
				if res, err := l.Append(ctx, d.stream, d.expected, d.evs...); err != nil || res != d.res {
					rt.Fatalf("retry of %+v = %+v, %v", d.res, res, err)
				}
			case 7: // move the tail into Pebble's memtable
				l.flushIndex()
			case 8: // and on to an sstable
				l.flushIndex()
				if err := l.db.Flush(); err != nil {
					rt.Fatal(err)
				}
			case 9:
				l.flushIndex()
				if err := l.db.Compact(ctx, []byte{prefixStream}, []byte{prefixStream + 1}, false); err != nil {
					rt.Fatal(err)
				}
			default: // reopen
				l = reopenWays[op-10].reopen(rt, l, dir, opts)
			}
		}
		for _, s := range streams {
			n := uint64(0)
			for _, err := range l.ReadStream(ctx, s, store.ReadStreamOptions{}) {
				if err != nil {
					break // a missing stream
				}
				n++
			}
			if n != versions[s] {
				rt.Fatalf("stream %s holds %d events, model %d", s, n, versions[s])
			}
		}
	})
}
