package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// TestRetriesUnderLoad drives the writer's retry check (which waits for the
// syncer) while group commit gathers other appends, in every durability
// mode: the two must never wait for each other.
func TestRetriesUnderLoad(t *testing.T) {
	for _, d := range []Durability{SyncAlways, SyncInterval, SyncNone} {
		t.Run(d.String(), func(t *testing.T) {
			l := mustOpen(t, t.TempDir(), Options{Durability: d})
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 16 {
				wg.Add(2)
				go func() { // appends, each followed at once by its retry
					defer wg.Done()
					stream := fmt.Sprintf("retry-%d", g)
					for v := range uint64(30) {
						evs := []event.Event{{ID: event.NewID(), Type: "t"}, {ID: event.NewID(), Type: "t"}}
						first, err := l.Append(ctx, stream, store.Exactly(2*v), evs...)
						if err != nil {
							errs <- err
							return
						}
						again, err := l.Append(ctx, stream, store.Exactly(2*v), evs...)
						if err != nil || again != first {
							errs <- fmt.Errorf("retry of %+v = %+v, %v", first, again, err)
							return
						}
						if anyAgain, err := l.Append(ctx, stream, store.Any, evs...); err != nil || anyAgain != first {
							errs <- fmt.Errorf("retry with Any of %+v = %+v, %v", first, anyAgain, err)
							return
						}
					}
				}()
				go func() { // plain appends keep group commit busy
					defer wg.Done()
					for range 60 {
						if _, err := l.Append(ctx, fmt.Sprintf("load-%d", g), store.Any, event.Event{Type: "t"}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			st, _ := l.Stats(ctx)
			if want := uint64(16*30*2 + 16*60); st.Head != want {
				t.Fatalf("head = %d, want %d: a retry wrote again", st.Head, want)
			}
		})
	}
}

// TestEnqueueOrder: appends enqueued one after another are written in that
// order (each expects the version the one before it makes) while none of
// them has been waited for, and one whose context ends once it is queued
// still happens.
func TestEnqueueOrder(t *testing.T) {
	for _, d := range []Durability{SyncAlways, SyncNone} {
		t.Run(d.String(), func(t *testing.T) {
			l := mustOpen(t, t.TempDir(), Options{Durability: d})
			defer l.Close()
			ctx := context.Background()
			var waits []func() (store.AppendResult, error)
			for v := range uint64(200) {
				cctx, cancel := context.WithCancel(ctx)
				wait, err := l.Enqueue(cctx, "ordered", store.Exactly(v), event.Event{Type: "t", Data: []byte(fmt.Sprint(v))})
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				waits = append(waits, wait)
			}
			for v, wait := range waits {
				for range 2 { // a wait may be repeated
					res, err := wait()
					if err != nil || res.Version != uint64(v)+1 {
						t.Fatalf("append %d: %+v, %v", v, res, err)
					}
				}
			}
			// Queued together, they share fsyncs, and each fsync is counted
			// by the appends it covered.
			if st, _ := l.Stats(ctx); d == SyncAlways {
				var batches uint64
				for _, n := range st.SyncBatches {
					batches += n
				}
				if batches != st.Syncs || st.SyncBatches[0] == batches {
					t.Fatalf("syncs %d, batches by size %v: want every fsync counted, some covering several appends", st.Syncs, st.SyncBatches)
				}
			}
			// Bad input is refused at once, with nothing queued.
			if _, err := l.Enqueue(ctx, "", store.Any, event.Event{Type: "t"}); !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("an empty stream name: %v", err)
			}
			if h, _ := l.Head(ctx); h != 200 {
				t.Fatalf("head %d, want 200", h)
			}
		})
	}
}
