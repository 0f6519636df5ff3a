package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// lineWriter delivers each written line on a channel, so a test can wait
// for tail's output as it arrives.
type lineWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		s := w.buf.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		w.lines <- s[:i]
		w.buf.Reset()
		w.buf.WriteString(s[i+1:])
	}
	return len(p), nil
}

func (w *lineWriter) next(t *testing.T) recordJSON {
	t.Helper()
	select {
	case l := <-w.lines:
		var r recordJSON
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no output from tail")
	}
	panic("unreachable")
}

func TestTailFollowsUntilCancelled(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		first uint64 // position of the first record printed
	}{
		{nil, 1},
		{[]string{"--after", "4"}, 5},
		{[]string{"--from-end"}, 6},
		{[]string{"--prefix", "orders-", "--type", "order.shipped"}, 5},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeEnv()
			dir := t.TempDir()
			seed(t, f, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &lineWriter{lines: make(chan string, 100)}
			done := make(chan int)
			go func() {
				args := append([]string{"tail", "--data", dir}, tt.args...)
				done <- Run(ctx, f.Env(), args, strings.NewReader(""), out, io.Discard)
			}()
			if tt.first <= 5 {
				if got := out.next(t).Position; got != tt.first {
					t.Errorf("first record at %d, want %d", got, tt.first)
				}
			}
			// A --from-end tail must have read the head before the append.
			for f.store(dir).subscribers() == 0 {
				time.Sleep(time.Millisecond)
			}
			f.store(dir).Append(ctx, "orders-1", store.Any, event.Event{Type: "order.shipped", Data: []byte(`{}`)})
			for {
				if out.next(t).Position == 6 {
					break
				}
			}
			cancel() // what SIGINT does through signal.NotifyContext
			select {
			case code := <-done:
				if code != ExitOK {
					t.Errorf("exit %d after cancel, want 0", code)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("tail did not stop after cancel")
			}
		})
	}
}

type closedSubscriber struct{}

func (closedSubscriber) Subscribe(context.Context, store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) { yield(event.Record{}, store.ErrClosed) }
}

func (closedSubscriber) Head(context.Context) (uint64, error) { return 0, nil }

func TestTailErrorIsFailure(t *testing.T) {
	err := tailRecords(context.Background(), closedSubscriber{}, store.SubscribeOptions{}, false, newRecordWriter(io.Discard, formatJSON, true))
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}
