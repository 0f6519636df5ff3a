package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/stream"
)

// txLog writes n transactions over users users into a fresh log: event
// time in the data ("ts", epoch ms), up to 2 s out of order.
func txLog(t testing.TB, dir string, n, users int) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(dir, eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	x := uint64(42)
	rnd := func(m uint64) uint64 { // xorshift: deterministic and cheap
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x % m
	}
	batch := make([]event.Event, 0, 1000)
	ts := int64(1_700_000_000_000)
	for i := range n {
		ts += int64(rnd(40))
		at := ts - int64(rnd(2000))
		data := fmt.Appendf(nil, `{"user":"u%d","amount":"%d.%02d","ts":%d}`, rnd(uint64(users)), rnd(500), rnd(100), at)
		batch = append(batch, event.Event{Type: "tx", Data: data})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.Append(ctx, fmt.Sprintf("card-%d", i/1000), store.Any, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return l
}

var txFields = Fields{Key: "user", Value: "amount", Time: "ts"}

func countJob(dir string, parts, every int) *Job[num.Dec, int64, int64] {
	return &Job[num.Dec, int64, int64]{
		Name: "bursts", Window: stream.Config{Kind: stream.Lookback, Size: 60_000},
		Agg: stream.Count[num.Dec]{}, MaxOutOfOrder: 2000,
		Partitions: parts, Dir: dir, FlushEvery: every, CheckpointEvery: 3 * every,
	}
}

func logSource(l store.Store) *LogSource[num.Dec] {
	return &LogSource[num.Dec]{Store: l, Types: []string{"tx"}, Extract: txFields.Record}
}

func runToFile[A, R any](t *testing.T, j *Job[num.Dec, A, R], src Source[num.Dec], path string) []byte {
	t.Helper()
	sink := &FileSink[num.Dec, R]{Path: path}
	defer sink.Close()
	if err := j.Run(context.Background(), src, sink); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOutputDoesNotDependOnBarriers: the order of outputs is by cause, so
// checkpoint intervals of any length give the same file; any partition
// count gives the same results.
func TestOutputDoesNotDependOnBarriers(t *testing.T) {
	dir := t.TempDir()
	l := txLog(t, filepath.Join(dir, "log"), 20_000, 300)
	defer l.Close()
	a := runToFile(t, countJob(filepath.Join(dir, "a"), 2, 997), logSource(l), filepath.Join(dir, "a.jsonl"))
	b := runToFile(t, countJob(filepath.Join(dir, "b"), 2, 100_000), logSource(l), filepath.Join(dir, "b.jsonl"))
	if !bytes.Equal(a, b) {
		t.Fatal("the same job with other checkpoint intervals wrote another file")
	}
	c := runToFile(t, countJob("", 1, 5000), logSource(l), filepath.Join(dir, "c.jsonl"))
	la, lc := strings.Split(string(a), "\n"), strings.Split(string(c), "\n")
	slices.Sort(la)
	slices.Sort(lc)
	if !slices.Equal(la, lc) {
		t.Fatal("one partition and two gave different results")
	}
	// One result per user and instant: nearly one per event.
	if n := bytes.Count(a, []byte("\n")); n < 19_000 || n > 20_000 {
		t.Fatalf("%d results for 20,000 events", n)
	}
}

// TestResumeAfterCancel stops a job at many points (its context ends
// mid-interval) and restarts it each time: the file equals an
// uninterrupted run's.
func TestResumeAfterCancel(t *testing.T) {
	dir := t.TempDir()
	l := txLog(t, filepath.Join(dir, "log"), 30_000, 500)
	defer l.Close()
	want := runToFile(t, countJob(filepath.Join(dir, "whole"), 2, 1000), logSource(l), filepath.Join(dir, "whole.jsonl"))

	cpDir, path := filepath.Join(dir, "cp"), filepath.Join(dir, "resumed.jsonl")
	for round := 0; ; round++ {
		if round > 200 {
			t.Fatal("the job does not finish")
		}
		j := countJob(cpDir, 2, 1000)
		ctx, cancel := context.WithCancel(context.Background())
		intervals := 0
		j.Progress = func(Progress) {
			if intervals++; intervals == 3 {
				cancel() // mid-flight: the reader is already further
			}
		}
		sink := &FileSink[num.Dec, int64]{Path: path}
		err := j.Run(ctx, logSource(l), sink)
		sink.Close()
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("resumed run wrote %d bytes, uninterrupted %d; they differ", len(got), len(want))
	}
}

func TestCheckpointMismatch(t *testing.T) {
	dir := t.TempDir()
	l := txLog(t, filepath.Join(dir, "log"), 2000, 10)
	defer l.Close()
	runToFile(t, countJob(filepath.Join(dir, "cp"), 2, 500), logSource(l), filepath.Join(dir, "out.jsonl"))
	err := countJob(filepath.Join(dir, "cp"), 3, 500).Run(context.Background(), logSource(l), &FileSink[num.Dec, int64]{Path: filepath.Join(dir, "out3.jsonl")})
	if !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("got %v, want ErrCheckpoint for another partition count", err)
	}
}

// TestStreamSinkOnce: derived events land in a stream once, even when the
// job restarts from a checkpoint older than what it had appended.
func TestStreamSinkOnce(t *testing.T) {
	dir := t.TempDir()
	l := txLog(t, filepath.Join(dir, "log"), 5000, 50)
	defer l.Close()
	src := &LogSource[num.Dec]{Store: l, Types: []string{"tx"}, Extract: txFields.Record}
	j := countJob(filepath.Join(dir, "cp"), 2, 700)
	sink := &StreamSink[num.Dec, int64]{Store: l, Stream: "bursts-out", Job: j.Name}
	if err := j.Run(context.Background(), src, sink); err != nil {
		t.Fatal(err)
	}
	count := func() (n int, ids map[event.ID]bool) {
		ids = map[event.ID]bool{}
		for rec, err := range l.ReadStream(context.Background(), "bursts-out", store.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			ids[rec.ID] = true
		}
		return n, ids
	}
	n, ids := count()
	if n == 0 || len(ids) != n {
		t.Fatalf("%d derived events, %d distinct ids", n, len(ids))
	}
	// Pretend a crash lost the last checkpoints: restart from an empty
	// one, which rereads everything. Nothing is appended twice.
	os.RemoveAll(filepath.Join(dir, "cp"))
	j2 := countJob(filepath.Join(dir, "cp"), 2, 700)
	sink2 := &StreamSink[num.Dec, int64]{Store: l, Stream: "bursts-out", Job: j.Name}
	if err := j2.Run(context.Background(), src, sink2); err != nil {
		t.Fatal(err)
	}
	if n2, _ := count(); n2 != n {
		t.Fatalf("after the rerun the stream holds %d events, want %d", n2, n)
	}
}

func TestLinesSource(t *testing.T) {
	in := strings.Join([]string{
		`{"user":"a","amount":"1","ts":1000}`,
		``,
		`{"user":"a","amount":"2.5","ts":"1970-01-01T00:00:01.5Z"}`,
		`{"user":"b","amount":3,"ts":2000}`,
	}, "\n")
	j := &Job[num.Dec, num.Dec, num.Dec]{Name: "sum", Window: stream.Config{Kind: stream.Tumbling, Size: 1000}, Agg: stream.Sum{}, Partitions: 2}
	var got []string
	sink := FuncSink[num.Dec, num.Dec](func(_ context.Context, outs []Output[num.Dec, num.Dec]) error {
		for _, o := range outs {
			got = append(got, fmt.Sprintf("%s %v %s", o.Result.Key, o.Result.Window, o.Result.Value))
		}
		return nil
	})
	if err := j.Run(context.Background(), &LinesSource[num.Dec]{R: strings.NewReader(in), Parse: txFields.Line}, sink); err != nil {
		t.Fatal(err)
	}
	want := []string{"a [1000, 2000) 3.5", "b [2000, 3000) 3"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	bad := &LinesSource[num.Dec]{R: strings.NewReader(in + "\n{\"user\":\"c\",\"ts\":5}"), Parse: txFields.Line}
	if err := j.Run(context.Background(), bad, sink); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("got %v, want an error naming line 5", err)
	}
}

// TestFollowLive: a job following the log emits results for events
// appended while it runs, without waiting for a full interval (the flush
// interval ends it), and a restarted job goes on from its checkpoint.
func TestFollowLive(t *testing.T) {
	dir := t.TempDir()
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	appendTx := func(user string, ts int64) {
		t.Helper()
		data := fmt.Appendf(nil, `{"user":%q,"amount":"1","ts":%d}`, user, ts)
		if _, err := l.Append(ctx, "card-"+user, store.Any, event.Event{Type: "tx", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	newJob := func() *Job[num.Dec, int64, int64] {
		return &Job[num.Dec, int64, int64]{
			Name: "live", Window: stream.Config{Kind: stream.Tumbling, Size: 1000},
			Agg: stream.Count[num.Dec]{}, Partitions: 2, Dir: filepath.Join(dir, "cp"),
			FlushInterval: 10 * time.Millisecond,
		}
	}
	src := &LogSource[num.Dec]{Store: l, Types: []string{"tx"}, Extract: txFields.Record, Follow: true}
	results := make(chan string, 100)
	sink := FuncSink[num.Dec, int64](func(_ context.Context, outs []Output[num.Dec, int64]) error {
		for _, o := range outs {
			results <- fmt.Sprintf("%s %v %d", o.Result.Key, o.Result.Window, o.Result.Value)
		}
		return nil
	})
	run := func() (context.CancelFunc, chan error) {
		jctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- newJob().Run(jctx, src, sink) }()
		return cancel, done
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-results:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no result %q within 10 s", want)
		}
	}

	cancel, done := run()
	appendTx("a", 100)
	appendTx("a", 900)
	appendTx("b", 1500) // moves the watermark to 1499: [0, 1000) fires
	expect("a [0, 1000) 2")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("job ended with %v", err)
	}

	// Restarted: b's window is still open in the checkpoint.
	cancel, done = run()
	defer cancel()
	appendTx("b", 1700)
	appendTx("a", 2100)
	expect("b [1000, 2000) 2")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("job ended with %v", err)
	}
	select {
	case extra := <-results:
		t.Fatalf("unexpected result %q", extra)
	default:
	}
}
