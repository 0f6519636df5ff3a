package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

func testEvents(n int, typ string) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		id := event.NewID()
		evs[i] = event.Event{ID: id, Type: typ, Schema: 1, Data: []byte(`{"id":"` + id.String() + `"}`)}
	}
	return evs
}

// waitFor polls cond until it holds or d passes, and reports whether it
// held. For conditions on other goroutines' progress, never to let a race
// settle.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// heldAppend appends evs to stream in tx, through the very statement the
// store's writer sends, as another process's writer would.
func heldAppend(ctx context.Context, s *Store, tx pgx.Tx, stream string, exp store.ExpectedVersion, evs []event.Event) (status int32, version int64, err error) {
	req, err := s.newAppendReq(ctx, stream, exp, evs)
	if err != nil {
		return 0, 0, err
	}
	var key pgtype.Int8
	err = tx.QueryRow(ctx, s.q.append, req.args()...).Scan(&status, &version, &key)
	return status, version, err
}

// TestNoGapUnderConcurrency is the gap test. Writers append through the
// store while helpers, like other processes' writers, append inside
// transactions they hold open until the store has committed newer
// transactions, then commit (late, with the smaller txid) or roll back. A
// subscription running from position 0 throughout must receive every
// committed event exactly once, at positions 1..N in order, and nothing
// rolled back; acknowledged positions, ReadAll, Head and stream versions
// must all agree with it.
func TestNoGapUnderConcurrency(t *testing.T) {
	url := testURL(t)
	s := openStore(t, url, newSchema(t, url))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ext, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()

	const writers, perWriter = 16, 200
	const holders, holdsPerHolder = 2, 12

	// The subscriber, from the start.
	var sub struct {
		sync.Mutex
		recs []event.Record
		err  error
	}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for r, err := range s.Subscribe(subCtx, store.SubscribeOptions{}) {
			sub.Lock()
			if err != nil {
				sub.err = err
				sub.Unlock()
				return
			}
			sub.recs = append(sub.recs, r)
			sub.Unlock()
		}
	}()
	received := func() int {
		sub.Lock()
		defer sub.Unlock()
		return len(sub.recs)
	}

	var (
		mu         sync.Mutex
		committed  = map[event.ID]bool{}   // must appear exactly once
		rolledBack = map[event.ID]bool{}   // must never appear
		ackedAt    = map[event.ID]uint64{} // the position Append acknowledged
		acked      atomic.Int64            // events acknowledged by Append
		late       atomic.Int64            // held commits after newer store commits
	)

	writersDone := make(chan struct{})
	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Go(func() {
			for i := range perWriter {
				n := i%3 + 1
				evs := testEvents(n, "gap.writer")
				stream := fmt.Sprintf("gap-%d-%d", w, i%5)
				res, err := s.Append(ctx, stream, store.Any, evs...)
				if err != nil {
					t.Errorf("writer %d: Append(%q): %v", w, stream, err)
					return
				}
				if res.LastPosition-res.FirstPosition+1 != uint64(n) {
					t.Errorf("writer %d: Append of %d events acknowledged at %d..%d", w, n, res.FirstPosition, res.LastPosition)
					return
				}
				mu.Lock()
				for j, e := range evs {
					committed[e.ID] = true
					ackedAt[e.ID] = res.FirstPosition + uint64(j)
				}
				mu.Unlock()
				acked.Add(int64(n))
			}
		})
	}

	var hwg sync.WaitGroup
	for h := range holders {
		hwg.Go(func() {
			for k := range holdsPerHolder {
				// Let the writers make progress between holds: while a hold
				// is open nothing newer can be positioned.
				from := acked.Load()
				select {
				case <-writersDone:
					return
				default:
				}
				waitFor(5*time.Second, func() bool { return acked.Load() >= from+100 })

				tx, err := ext.Begin(ctx)
				if err != nil {
					t.Errorf("holder %d: begin: %v", h, err)
					return
				}
				var evs []event.Event
				for a := range 1 + k%2 { // one or two appends in the transaction
					e := testEvents(1+(k+a)%3, "gap.held")
					status, _, err := heldAppend(ctx, s, tx, fmt.Sprintf("held-%d-%d-%d", h, k, a), store.NoStream, e)
					if err != nil || status != statusAppended {
						t.Errorf("holder %d: held append: status %d, %v", h, status, err)
						tx.Rollback(ctx)
						return
					}
					evs = append(evs, e...)
				}
				// Hold the transaction open until the store has committed
				// two more groups: the second began after the first
				// committed, after this transaction took its txid, so it is
				// newer, and this one commits late.
				before := s.commits.Load()
				isLate := waitFor(500*time.Millisecond, func() bool { return s.commits.Load() >= before+2 })

				if k%3 == 2 {
					if err := tx.Rollback(ctx); err != nil {
						t.Errorf("holder %d: rollback: %v", h, err)
						return
					}
					mu.Lock()
					for _, e := range evs {
						rolledBack[e.ID] = true
					}
					mu.Unlock()
					continue
				}
				// Recorded before the commit: the subscriber may see the
				// events as soon as it happens.
				mu.Lock()
				for _, e := range evs {
					committed[e.ID] = true
				}
				mu.Unlock()
				if err := tx.Commit(ctx); err != nil {
					t.Errorf("holder %d: commit: %v", h, err)
					return
				}
				if isLate {
					late.Add(1)
				}
				// A writer runs a round after its commit.
				rows, err := ext.Query(ctx, s.q.sequence, lockClassSequence, s.key, s.channel, roundLimit)
				if err == nil {
					_, err = scanRound(rows)
				}
				if err != nil {
					t.Errorf("holder %d: round: %v", h, err)
					return
				}
			}
		})
	}

	wwg.Wait()
	close(writersDone)
	hwg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want := len(committed)
	if !waitFor(time.Minute, func() bool { return received() >= want }) {
		t.Fatalf("subscriber received %d records within a minute, want %d", received(), want)
	}
	stopSub()
	<-subDone
	if sub.err != nil && !errors.Is(sub.err, context.Canceled) {
		t.Fatalf("subscription ended with %v", sub.err)
	}
	if n := late.Load(); n == 0 {
		t.Errorf("no held transaction committed after newer store transactions: the test did not exercise late commits")
	} else {
		t.Logf("%d events appended, %d held transactions committed late, %d events rolled back", want, n, len(rolledBack))
	}

	seen := map[event.ID]bool{}
	for i, r := range sub.recs {
		switch {
		case r.Position != uint64(i+1):
			t.Fatalf("record %d at position %d, want %d (a gap or a duplicate)", i, r.Position, i+1)
		case rolledBack[r.ID]:
			t.Fatalf("position %d holds %v of a rolled-back transaction", r.Position, r.ID)
		case !committed[r.ID]:
			t.Fatalf("position %d holds %v, which nobody appended", r.Position, r.ID)
		case seen[r.ID]:
			t.Fatalf("position %d repeats %v", r.Position, r.ID)
		}
		seen[r.ID] = true
		if p, ok := ackedAt[r.ID]; ok && p != r.Position {
			t.Fatalf("%v acknowledged at position %d, subscriber saw it at %d", r.ID, p, r.Position)
		}
	}
	if len(sub.recs) != want {
		t.Fatalf("subscriber received %d records, want %d", len(sub.recs), want)
	}
	if head, err := s.Head(ctx); err != nil || head != uint64(want) {
		t.Fatalf("Head = %d, %v; want %d", head, err, want)
	}

	// ReadAll agrees, and every stream's versions run 1, 2, ... in
	// position order.
	versions := map[string]uint64{}
	i := 0
	for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if i >= len(sub.recs) || r.Position != sub.recs[i].Position || r.ID != sub.recs[i].ID {
			t.Fatalf("ReadAll record %d (position %d, %v) differs from the subscription's", i, r.Position, r.ID)
		}
		if r.Version != versions[r.Stream]+1 {
			t.Fatalf("stream %q: version %d at position %d follows version %d", r.Stream, r.Version, r.Position, versions[r.Stream])
		}
		versions[r.Stream] = r.Version
		i++
	}
	if i != want {
		t.Fatalf("ReadAll: %d records, want %d", i, want)
	}
}

// TestStreamOrderAcrossTransactions checks the rule that keeps a stream's
// versions in position order: an append whose transaction is older than
// the one that wrote the stream's last event is refused (statusAgain), to
// be made again in a newer transaction.
func TestStreamOrderAcrossTransactions(t *testing.T) {
	url := testURL(t)
	s := openStore(t, url, newSchema(t, url))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ext, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()

	// An old transaction: it takes its txid now.
	old, err := ext.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	if _, err := old.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	// The store appends in a newer transaction; it commits, but cannot be
	// positioned (acknowledged) while the old one is open.
	before := s.commits.Load()
	type result struct {
		res store.AppendResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, "ordered", store.NoStream, testEvents(1, "first")...)
		done <- result{res, err}
	}()
	if !waitFor(30*time.Second, func() bool { return s.commits.Load() > before }) {
		t.Fatal("the store's append did not commit")
	}
	select {
	case r := <-done:
		t.Fatalf("Append acknowledged (%+v, %v) while an older transaction was open", r.res, r.err)
	default:
	}

	// The old transaction appends after the newer one's event: refused.
	status, version, err := heldAppend(ctx, s, old, "ordered", store.Any, testEvents(1, "second"))
	if err != nil {
		t.Fatal(err)
	}
	if status != statusAgain || version != 1 {
		t.Fatalf("append in an older transaction after a newer one's event: status %d, version %d; want %d, 1", status, version, statusAgain)
	}
	if err := old.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Once the old transaction is gone the store's append is positioned.
	select {
	case r := <-done:
		if r.err != nil || r.res != (store.AppendResult{Version: 1, FirstPosition: 1, LastPosition: 1}) {
			t.Fatalf("Append: %+v, %v", r.res, r.err)
		}
	case <-ctx.Done():
		t.Fatal("Append not acknowledged after the older transaction ended")
	}
	// A newer transaction may append.
	tx, err := ext.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if status, version, err = heldAppend(ctx, s, tx, "ordered", store.Any, testEvents(1, "second")); err != nil || status != statusAppended || version != 2 {
		t.Fatalf("append in a newer transaction: status %d, version %d, %v", status, version, err)
	}
}

// TestCarryIntoNewerTransaction drives the writer into the case the txid
// rule refuses: its group's transaction took its txid, then another
// process committed the event its append must follow. The append is
// carried into the next group and lands after that event.
func TestCarryIntoNewerTransaction(t *testing.T) {
	url := testURL(t)
	s := openStore(t, url, newSchema(t, url))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ext, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	for _, stream := range []string{"a", "z"} {
		if _, err := s.Append(ctx, stream, store.NoStream, testEvents(1, "first")...); err != nil {
			t.Fatal(err)
		}
	}

	// hold begins a transaction that appends to stream and stays open; it
	// returns the transaction and its txid.
	hold := func(stream string) (pgx.Tx, string) {
		t.Helper()
		tx, err := ext.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(context.Background()) })
		if status, _, err := heldAppend(ctx, s, tx, stream, store.Any, testEvents(1, "held")); err != nil || status != statusAppended {
			t.Fatalf("held append to %q: status %d, %v", stream, status, err)
		}
		var txid string
		if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&txid); err != nil {
			t.Fatal(err)
		}
		return tx, txid
	}
	// waitBlocked waits until some session waits for transaction txid.
	waitBlocked := func(txid string) {
		t.Helper()
		ok := waitFor(30*time.Second, func() bool {
			var n int
			err := ext.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted AND transactionid::text = $1`, txid).Scan(&n)
			return err == nil && n > 0
		})
		if !ok {
			t.Fatalf("nobody waits for transaction %s", txid)
		}
	}
	type result struct {
		res store.AppendResult
		err error
	}
	appendAsync := func(stream string) chan result {
		ch := make(chan result, 1)
		go func() {
			res, err := s.Append(ctx, stream, store.Any, testEvents(1, "store")...)
			ch <- result{res, err}
		}()
		return ch
	}

	// Keep both committers busy, so that the next two appends form one
	// group.
	x0, x0id := hold("z")
	a0 := appendAsync("z")
	waitBlocked(x0id)
	w0, w0id := hold("y")
	b0 := appendAsync("y")
	waitBlocked(w0id)
	x, xid := hold("a")
	a1 := appendAsync("a")
	a2 := appendAsync("b")
	if !waitFor(30*time.Second, func() bool { return len(s.queue) == 2 }) {
		t.Fatal("the appends to a and b did not queue up")
	}
	carried := s.carried.Load()
	if err := x0.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The group [a, b] has taken its txid (the append to a follows the
	// stream's first event, so it asked for it) and waits for x's row.
	waitBlocked(xid)
	// A newer transaction writes b's first event and commits.
	y, err := ext.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, err := heldAppend(ctx, s, y, "b", store.NoStream, testEvents(1, "newer")); err != nil || status != statusAppended {
		t.Fatalf("newer append to b: status %d, %v", status, err)
	}
	if err := y.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w0.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for stream, ch := range map[string]chan result{"z": a0, "y": b0, "a": a1, "b": a2} {
		want := uint64(2)
		if stream == "y" {
			want = 1
		}
		select {
		case r := <-ch:
			if r.err != nil || r.res.Version != want {
				t.Fatalf("Append to %q: %+v, %v; want version %d", stream, r.res, r.err, want)
			}
		case <-ctx.Done():
			t.Fatalf("Append to %q not acknowledged", stream)
		}
	}
	if s.carried.Load() == carried {
		t.Fatal("no append was carried into a newer transaction")
	}
	var prev event.Record
	for r, err := range s.ReadStream(ctx, "b", store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != prev.Version+1 || r.Position <= prev.Position {
			t.Fatalf("stream b: version %d at position %d after version %d at %d", r.Version, r.Position, prev.Version, prev.Position)
		}
		prev = r
	}
	if prev.Version != 2 {
		t.Fatalf("stream b ends at version %d, want 2", prev.Version)
	}
}
