package eventlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

func TestFollowerSeesEveryAppendOfAnotherWriter(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 64 << 10}) // several segments
	defer l.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open = %v, want ErrLocked", err)
	}
	f, err := OpenFollower(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Append(context.Background(), "s", store.Any, event.Event{Type: "t"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("follower append = %v, want ErrReadOnly", err)
	}

	const writers, appends = 4, 150
	total := uint64(writers * appends * 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { // subscribe from the start while the writers run
		next := uint64(1)
		for r, err := range f.Subscribe(ctx, store.SubscribeOptions{}) {
			if err != nil {
				got <- err
				return
			}
			if r.Position != next {
				got <- fmt.Errorf("follower got position %d, want %d", r.Position, next)
				return
			}
			if next++; next > total {
				got <- nil
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range appends {
				mustAppend(t, l, fmt.Sprintf("w-%d", w), 2)
			}
		}()
	}
	wg.Wait()
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	if h, err := f.Head(ctx); err != nil || h != total {
		t.Fatalf("follower head = %d, %v; want %d", h, err, total)
	}
	st, err := f.Stats(ctx)
	if err != nil || st.Head != total || st.Streams != writers || st.Segments < 2 {
		t.Fatalf("follower stats = %+v, %v", st, err)
	}
	logRecs := readAllRecords(t, l)
	i := 0
	for r, err := range f.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != logRecs[i].ID || r.Position != logRecs[i].Position {
			t.Fatalf("follower record %d differs from the log's", i)
		}
		i++
	}
	n := 0
	for r, err := range f.ReadStream(ctx, "w-2", store.ReadStreamOptions{Backwards: true, Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(2*appends - n); r.Version != want {
			t.Fatalf("backwards read gave version %d, want %d", r.Version, want)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("read %d records, want 3", n)
	}
}

func TestFollowerNeverYieldsPartOfAnAppend(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	mustAppend(t, l, "s", 3)
	l.Close()
	// Add the first frame of a two-event append, as a writer caught mid-write
	// would have left it.
	path := lastSegmentPath(t, dir)
	frame := appendFrame(nil, "s", &event.Event{ID: event.NewID(), Type: "t"})
	sealFrame(frame, 4, 4, time.Now().UnixNano(), 0)
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(frame)
	fh.Close()

	f, err := OpenFollower(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for _, err := range f.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if h, _ := f.Head(context.Background()); n != 3 || h != 3 {
		t.Fatalf("follower read %d records, head %d; want 3 and 3", n, h)
	}
}
