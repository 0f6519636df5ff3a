package pgstore

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

// TestTwoNodes runs two stores on one schema, as two processes would,
// with writers on both appending to shared streams (Any, and Exactly with
// optimistic retries) and to their own. Every acknowledged event must be in
// the log exactly once at the position it was acknowledged at, positions
// dense, each stream's versions in position order, and a subscriber on one
// node must see the other node's appends live.
func TestTwoNodes(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	a := openStore(t, url, schema)
	b := openStore(t, url, schema)
	nodes := []*Store{a, b}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The subscriber sits on node b; it stops at the sentinel.
	type subResult struct {
		recs []event.Record
		err  error
	}
	subDone := make(chan subResult, 1)
	sentinel := event.NewID()
	go func() {
		var res subResult
		defer func() { subDone <- res }()
		for r, err := range b.Subscribe(ctx, store.SubscribeOptions{}) {
			if err != nil {
				res.err = err
				return
			}
			res.recs = append(res.recs, r)
			if r.ID == sentinel {
				return
			}
		}
	}()

	const writersPerNode, perWriter = 6, 60
	var (
		mu      sync.Mutex
		ackedAt = map[event.ID]uint64{}
		wg      sync.WaitGroup
	)
	for ni, s := range nodes {
		for w := range writersPerNode {
			wg.Go(func() {
				var known uint64 // this writer's view of "contended"
				for i := range perWriter {
					evs := testEvents(i%2+1, fmt.Sprintf("node%d", ni))
					var res store.AppendResult
					var err error
					switch i % 3 {
					case 0: // shared streams, whatever their version
						res, err = s.Append(ctx, fmt.Sprintf("shared-%d", i%4), store.Any, evs...)
					case 1: // one stream, optimistic concurrency across nodes
						for {
							res, err = s.Append(ctx, "contended", store.Exactly(known), evs...)
							var wev *store.WrongExpectedVersionError
							if errors.As(err, &wev) {
								known = wev.Actual
								continue
							}
							if err == nil {
								known = res.Version
							}
							break
						}
					default: // a stream of this writer's own
						res, err = s.Append(ctx, fmt.Sprintf("own-%d-%d", ni, w), store.Any, evs...)
					}
					if err != nil {
						t.Errorf("node %d writer %d: %v", ni, w, err)
						return
					}
					mu.Lock()
					for j, e := range evs {
						ackedAt[e.ID] = res.FirstPosition + uint64(j)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	last, err := a.Append(ctx, "sentinel", store.NoStream, event.Event{ID: sentinel, Type: "sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	var sub subResult
	select {
	case sub = <-subDone:
	case <-ctx.Done():
		t.Fatal("the subscriber on node b did not see node a's sentinel")
	}
	if sub.err != nil {
		t.Fatalf("subscription: %v", sub.err)
	}
	if uint64(len(sub.recs)) != last.LastPosition {
		t.Fatalf("subscriber saw %d records up to the sentinel at %d", len(sub.recs), last.LastPosition)
	}
	versions := map[string]uint64{}
	for i, r := range sub.recs {
		if r.Position != uint64(i+1) {
			t.Fatalf("record %d at position %d", i, r.Position)
		}
		if r.Version != versions[r.Stream]+1 {
			t.Fatalf("stream %q: version %d at position %d follows version %d", r.Stream, r.Version, r.Position, versions[r.Stream])
		}
		versions[r.Stream] = r.Version
		if r.ID == sentinel {
			continue
		}
		p, ok := ackedAt[r.ID]
		if !ok {
			t.Fatalf("position %d holds %v, which no append acknowledged", r.Position, r.ID)
		}
		if p != r.Position {
			t.Fatalf("%v acknowledged at %d, found at %d", r.ID, p, r.Position)
		}
		delete(ackedAt, r.ID)
	}
	if len(ackedAt) > 0 {
		t.Fatalf("%d acknowledged events missing from the log", len(ackedAt))
	}
	for i, s := range nodes {
		if head, err := s.Head(ctx); err != nil || head != last.LastPosition {
			t.Fatalf("node %d: Head = %d, %v; want %d", i, head, err, last.LastPosition)
		}
	}
}
