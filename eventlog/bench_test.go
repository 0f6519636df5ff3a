package eventlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// benchPayload is a small JSON event body. With the benchmarks' stream
// names ("bench-N", "fill-N") and type it makes a 144-byte frame, the size
// the targets in docs/benchmarks.md were set with.
var benchPayload = []byte(`{"account":"acct-000042","amount":"125.40","currency":"EUR"}`)

// BenchmarkAppendDurable measures acknowledged, fsynced single-event appends
// with many concurrent writers, each on its own stream: the group commit path.
func BenchmarkAppendDurable(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchAppend(b, Options{}, writers, 1)
		})
	}
}

// BenchmarkAppendBatched measures 100-event appends (fsynced).
func BenchmarkAppendBatched(b *testing.B) {
	for _, writers := range []int{1, 4, 16, 64, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchAppend(b, Options{}, writers, 100)
		})
	}
}

// BenchmarkAppendNoSync isolates CPU cost from fsync.
func BenchmarkAppendNoSync(b *testing.B) {
	benchAppend(b, Options{Durability: SyncNone}, 64, 1)
}

func benchAppend(b *testing.B, opts Options, writers, batch int) {
	l, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	var next atomic.Int64
	total := int64(b.N) // events
	b.SetBytes(int64(len(benchPayload)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("bench-%d", w)
			evs := make([]event.Event, batch)
			for {
				if next.Add(int64(batch)) > total+int64(batch)-1 {
					return
				}
				for i := range evs {
					evs[i] = event.Event{Type: "payment.authorized", Data: benchPayload}
				}
				if _, err := l.Append(ctx, stream, store.Any, evs...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if st, _ := l.Stats(ctx); st.Syncs > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Syncs), "appends/sync")
		b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(st.Syncs), "µs/sync")
	}
}

// BenchmarkReadAll measures a full scan from the page cache: records decoded
// (envelope, CRC checked), payload not parsed.
func BenchmarkReadAll(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	l, err := Open(dir, Options{Durability: SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	fillLog(b, l, n)
	ctx := context.Background()
	// Warm the page cache.
	for _, err := range l.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var count int
	for range b.N {
		count = 0
		for _, err := range l.ReadAll(ctx, store.ReadAllOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
	}
	b.StopTimer()
	if count != n {
		b.Fatalf("read %d records, want %d", count, n)
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "events/s")
	l.Close()
}

// BenchmarkReadStream reads one 1,000-event stream among many.
func BenchmarkReadStream(b *testing.B) {
	l, err := Open(b.TempDir(), Options{Durability: SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	fillLog(b, l, 100_000) // 100 streams of 1,000
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		n := 0
		for _, err := range l.ReadStream(ctx, fmt.Sprintf("fill-%d", i%100), store.ReadStreamOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("read %d", n)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
}

func fillLog(tb testing.TB, l *Log, n int) {
	tb.Helper()
	evs := make([]event.Event, 100)
	for i := 0; i < n; i += len(evs) {
		for j := range evs {
			evs[j] = event.Event{Type: "payment.authorized", Data: benchPayload}
		}
		if _, err := l.Append(context.Background(), fmt.Sprintf("fill-%d", (i/len(evs))%100), store.Any, evs...); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkAppendBatchedNoSync is the CPU ceiling of batched appends.
func BenchmarkAppendBatchedNoSync(b *testing.B) {
	benchAppend(b, Options{Durability: SyncNone}, 4, 100)
}

// TestReadAllDoesNotAllocatePerRecord guards the read path's zero-copy
// decoding: allocations are per 256 KiB chunk, never per record.
func TestReadAllDoesNotAllocatePerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a log")
	}
	l := mustOpen(t, t.TempDir(), Options{Durability: SyncNone})
	defer l.Close()
	const n = 20_000
	fillLog(t, l, n)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(3, func() {
		count := 0
		for _, err := range l.ReadAll(ctx, store.ReadAllOptions{Filter: store.Filter{StreamPrefix: "fill-"}}) {
			if err != nil {
				t.Fatal(err)
			}
			count++
		}
		if count != n {
			t.Fatalf("read %d records, want %d", count, n)
		}
	})
	if allocs > n/100 {
		t.Fatalf("ReadAll of %d records made %.0f allocations: something allocates per record", n, allocs)
	}
}

// newStreamsFill is how many streams BenchmarkAppendNewStreams finds in the
// log before it starts: enough that Pebble holds them in several sstables.
const newStreamsFill = 1_000_000

// BenchmarkAppendNewStreams measures appends that each create a stream
// (store.NoStream), as the order generator makes them, to a log that already
// holds newStreamsFill streams (reopened, so they are in Pebble's sstables
// and not in the writer's cache of heads): the writer must find out for each
// append that its stream does not exist yet. Stream names are scattered over
// the key space, among the existing ones. 64 writers, SyncNone.
func BenchmarkAppendNewStreams(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(dir, Options{Durability: SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Uint64 // streams created so far: the next one is new
	if err := appendNewStreams(l, &seq, newStreamsFill, 64, 1); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 4} {
		b.Run(fmt.Sprintf("events=%d", batch), func(b *testing.B) {
			l, err := Open(dir, Options{Durability: SyncNone})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := appendNewStreams(l, &seq, b.N, 64, batch); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// appendNewStreams appends about n events (rounded up to whole appends of
// batch events) with the given number of writers, each append with
// store.NoStream to a stream of its own, named after the next value of seq.
func appendNewStreams(l *Log, seq *atomic.Uint64, n, writers, batch int) error {
	ctx := context.Background()
	var left atomic.Int64
	left.Store(int64(n))
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := make([]event.Event, batch)
			for left.Add(-int64(batch)) > -int64(batch) {
				for i := range evs {
					evs[i] = event.Event{Type: "payment.authorized", Data: benchPayload}
				}
				stream := fmt.Sprintf("acct-%016x", scramble(seq.Add(1)))
				if _, err := l.Append(ctx, stream, store.NoStream, evs...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// scramble is a bijection on uint64 (splitmix64's finaliser): distinct
// inputs give distinct, evenly scattered stream names.
func scramble(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// BenchmarkFdatasync is the floor under every durable append: a write of a
// group's size into a zero-filled, allocated file (as the log's segments
// are) and an fdatasync, one after another, with percentiles. A group
// commit's caller waits for the fsync in progress and then its own, so
// this bounds the tail of any durable call from below.
func BenchmarkFdatasync(b *testing.B) {
	for _, size := range []int{512, 16 << 10, 32 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "probe"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, (b.N+1)*size)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size)
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.WriteAt(buf, int64(i*size)); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := fdatasync(f); err != nil {
					b.Fatal(err)
				}
				lat[i] = time.Since(start)
			}
			b.StopTimer()
			slices.Sort(lat)
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50-µs", 0.5}, {"p99-µs", 0.99}, {"p99.9-µs", 0.999}} {
				b.ReportMetric(float64(lat[int(p.q*float64(b.N-1))].Nanoseconds())/1000, p.name)
			}
		})
	}
}
