package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

const (
	// maxGroupAttempts bounds how often a group is run again after the
	// server aborted its transaction for a deadlock or serialization
	// failure (only possible against other processes' writers).
	maxGroupAttempts = 5
	// maxAgain bounds how often one append is carried into a newer
	// transaction (statusAgain) before it fails.
	maxAgain = 100
)

// writers is how many groups may be in flight at once (see runWriter).
const writers = 2

// runWriters runs the group committers and, when they have stopped, tells
// the acker and Close.
func (s *Store) runWriters() {
	var wg sync.WaitGroup
	for range writers {
		wg.Go(s.runWriter)
	}
	wg.Wait()
	close(s.ackCh)
	close(s.writerDone)
}

// runWriter is a group committer. It takes every append waiting in the
// queue (up to MaxBatch and MaxBatchBytes) and sends them as one pipeline:
// BEGIN, one strata_append_group for all of them (one more for each further
// append to a stream already in the group), COMMIT, and a sequencer round —
// one round trip, one commit and one round for the whole group. While it
// waits for the database, the next group gathers in the queue.
//
// Two committers run, so that a group's commit (its WAL flush) and round
// overlap the next group's appends: with one, the database sat idle half
// of the time under load. But a second group sent at once would be small,
// and small groups cost more per append than they gain in overlap (this
// measured slower than one committer). So a group goes while another is in
// flight only once it is as large as that one: under steady load the two
// groups settle at about half of what is waiting each, and a lone append
// still goes at once. (docs/benchmarks.md: 16–37 % more appends per second
// than one committer, at 8 to 256 concurrent writers.)
func (s *Store) runWriter() {
	var carry []*appendReq
	for {
		group := carry
		carry = nil
		if len(group) == 0 {
			select {
			case r := <-s.queue:
				group = append(group, r)
			case <-s.quit:
				// appendMu guarantees nothing new arrives: drain what is queued.
				select {
				case r := <-s.queue:
					group = append(group, r)
				default:
					return
				}
			}
		}
		group = s.wait(s.gather(group))
		n := int32(len(group))
		s.inflight.Add(n)
		carry = s.commitGroup(group)
		s.inflight.Add(-n)
		select {
		case s.landed <- struct{}{}:
		default: // the other committer has a wake-up waiting already
		}
	}
}

// wait holds group back while another group is in flight and this one is
// smaller, adding what arrives meanwhile.
func (s *Store) wait(group []*appendReq) []*appendReq {
	for {
		n := int(s.inflight.Load())
		if n == 0 || len(group) >= n || s.full(group) {
			return group
		}
		select {
		case r := <-s.queue:
			group = s.gather(append(group, r))
		case <-s.landed:
		case <-s.quit:
			return s.gather(group)
		}
	}
}

// gather adds to group what else is waiting in the queue, until the group
// is full.
func (s *Store) gather(group []*appendReq) []*appendReq {
	bytes := groupBytes(group)
	for len(group) < s.opts.MaxBatch && bytes < s.opts.MaxBatchBytes {
		select {
		case r := <-s.queue:
			group = append(group, r)
			bytes += r.bytes
		default:
			return group
		}
	}
	return group
}

// full reports whether group has MaxBatch appends or MaxBatchBytes.
func (s *Store) full(group []*appendReq) bool {
	return len(group) >= s.opts.MaxBatch || groupBytes(group) >= s.opts.MaxBatchBytes
}

func groupBytes(group []*appendReq) int {
	bytes := 0
	for _, r := range group {
		bytes += r.bytes
	}
	return bytes
}

// groupResult is what the database said about one group.
type groupResult struct {
	outcomes  []outcome
	tx        int64 // the group's transaction key, if it wrote (else 0)
	committed bool
	round     map[int64]roundRow // what the group's own round positioned, by transaction key
}

// outcome is one append's strata_append(_group) result.
type outcome struct {
	status  int32
	version int64
}

// commitGroup writes group and delivers every outcome it can; appends that
// must wait for their positions go to the acker. It returns the appends to
// carry into the next group (statusAgain).
func (s *Store) commitGroup(group []*appendReq) (again []*appendReq) {
	live := make([]*appendReq, 0, len(group))
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.finish(store.AppendResult{}, err) // not written: nothing to be unsure about
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return nil
	}
	live, calls := inCalls(live)

	var out groupResult
	var err error
	for attempt := 1; ; attempt++ {
		out, err = s.runGroup(live, calls)
		if err == nil || out.committed || !retryable(err) || attempt == maxGroupAttempts {
			break
		}
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if len(live) > 1 && !out.committed && errors.As(err, &pgErr) {
			// The server refused something; run each append alone, so that
			// only the one at fault fails.
			for _, r := range live {
				again = append(again, s.commitGroup([]*appendReq{r})...)
			}
			return again
		}
		for _, r := range live {
			r.finish(store.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", r.stream, err))
		}
		return nil
	}
	return s.settle(live, out)
}

// retryable reports whether the server aborted a transaction that would
// succeed if run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40P01", "40001": // deadlock_detected, serialization_failure
		return true
	}
	return false
}

// runGroup sends one group's pipeline and reads its results: BEGIN, one
// strata_append_group per call (see inCalls), COMMIT and a sequencer round.
// group is in the calls' order. Once the COMMIT succeeded the group is
// written whatever happens next, and runGroup reports no error: the acker
// finds positions the group's own round did not deliver.
func (s *Store) runGroup(group []*appendReq, calls [][]*appendReq) (out groupResult, err error) {
	conn, err := s.pool.Acquire(s.ctx)
	if err != nil {
		return out, fmt.Errorf("acquire connection: %w", err)
	}
	defer release(conn)

	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	for _, c := range calls {
		b.Queue(s.q.appendGroup, newGroupCall(c).args()...)
	}
	b.Queue("COMMIT")
	b.Queue(s.q.sequence, lockClassSequence, s.key, s.channel, roundLimit)
	br := conn.SendBatch(s.ctx, b)
	defer br.Close()

	if _, err := br.Exec(); err != nil {
		return out, fmt.Errorf("begin: %w", err)
	}
	out.outcomes = make([]outcome, 0, len(group))
	for _, c := range calls {
		var statuses []int32
		var versions []int64
		var tx pgtype.Int8
		if err := br.QueryRow().Scan(&statuses, &versions, &tx); err != nil {
			return out, err
		}
		if len(statuses) != len(c) || len(versions) != len(c) {
			return out, fmt.Errorf("strata_append_group returned %d outcomes for %d appends", len(statuses), len(c))
		}
		for i := range c {
			out.outcomes = append(out.outcomes, outcome{status: statuses[i], version: versions[i]})
		}
		if tx.Valid {
			out.tx = tx.Int64
		}
	}
	if _, err := br.Exec(); err != nil {
		return out, fmt.Errorf("commit: %w", err)
	}
	out.committed = true
	s.commits.Add(1)
	if rows, err := br.Query(); err == nil {
		out.round, _ = scanRound(rows) // on error the acker runs a round
	}
	return out, nil
}

// release returns conn to the pool, rolling back whatever a failed
// pipeline left open; a connection that cannot be cleaned is closed, and
// the pool replaces it.
func release(conn *pgxpool.Conn) {
	pc := conn.Conn().PgConn()
	if !pc.IsClosed() && pc.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			conn.Conn().Close(ctx)
		}
		cancel()
	}
	conn.Release()
}

// settle delivers the outcomes of a committed group. Appended events are
// acknowledged only once positioned; a wrong expected version only once
// the version that beat it is positioned, so that the caller can read it
// at once (and linearizability holds); retries only once their original's
// positions are known. What the group's own round did not settle goes to
// the acker.
func (s *Store) settle(group []*appendReq, out groupResult) (again []*appendReq) {
	if len(out.round) > 0 {
		s.placed.add(out.round) // maybe the other committer's group too
		s.notify.broadcast()
	}
	// The group's own round positioned its rows if it reports the group's
	// transaction with exactly the rows the group appended. A transaction's
	// rows take its positions in ord order: the appends' rows are
	// consecutive, in the group's order.
	var total int64
	for i, r := range group {
		if out.outcomes[i].status == statusAppended {
			total += int64(len(r.ids))
		}
	}
	rr, placed := out.round[out.tx]
	placed = placed && out.tx != 0 && rr.count == total

	var pending []*pendingAck
	var off int64             // the append's first row within the transaction, from 0
	for i, r := range group { // appends first: a failed one may have lost to them
		o := out.outcomes[i]
		if o.status != statusAppended {
			continue
		}
		n := int64(len(r.ids))
		if !placed {
			pending = append(pending, &pendingAck{req: r, status: statusAppended, version: o.version, tx: out.tx, off: off})
			off += n
			continue
		}
		s.positioned.add(r.stream, uint64(o.version))
		first := rr.first + off
		r.finish(store.AppendResult{Version: uint64(o.version), FirstPosition: uint64(first), LastPosition: uint64(first + n - 1)}, nil)
		off += n
	}
	for i, r := range group {
		o := out.outcomes[i]
		switch o.status {
		case statusAppended:
		case statusRetry:
			pending = append(pending, &pendingAck{req: r, status: statusRetry, version: o.version})
		case statusWrong:
			if o.version == 0 || s.positioned.has(r.stream, uint64(o.version)) {
				r.finish(store.AppendResult{}, wrongVersion(r, o.version))
			} else {
				pending = append(pending, &pendingAck{req: r, status: statusWrong, version: o.version})
			}
		case statusAgain:
			if r.again++; r.again > maxAgain {
				r.finish(store.AppendResult{}, fmt.Errorf("pgstore: append to %q: still contended after %d transactions", r.stream, maxAgain))
				continue
			}
			s.carried.Add(1)
			again = append(again, r)
		case statusDupID:
			r.finish(store.AppendResult{}, fmt.Errorf("%w: an event id of this append is already in stream %q (at version %d): ids must be unique within a stream", event.ErrInvalid, r.stream, o.version))
		default:
			r.finish(store.AppendResult{}, fmt.Errorf("pgstore: append to %q: unknown outcome %d", r.stream, o.status))
		}
	}
	if len(pending) > 0 {
		s.ackCh <- pending
	}
	return again
}

func wrongVersion(r *appendReq, actual int64) error {
	return &store.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: uint64(actual)}
}
