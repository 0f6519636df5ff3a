package pgstore

import (
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

const (
	// minAckPoll is the first poll interval of an acker with waiting
	// appends; it doubles up to Options.PollInterval while nothing wakes it.
	minAckPoll = 5 * time.Millisecond
	// closeGrace is how long Close lets the acker wait for the positions of
	// appends already committed.
	closeGrace = 2 * time.Second
)

// pendingAck is a committed append outcome waiting for positions.
type pendingAck struct {
	req     *appendReq
	status  int32 // statusAppended, statusRetry or statusWrong
	version int64 // the stream's version after the append, or the actual version
	// tx and off, for statusAppended: the append's transaction and where
	// its rows start within it (from 0), so that a round's placement of
	// the transaction gives its positions without a lookup.
	tx, off int64
}

// keys are the (stream, version) rows whose positions p needs.
func (p *pendingAck) keys() []int64 {
	n := int64(len(p.req.ids))
	switch p.status {
	case statusAppended:
		return []int64{p.version - n + 1}
	case statusRetry:
		return []int64{p.version - n + 1, p.version}
	default: // statusWrong
		return []int64{p.version}
	}
}

// runAcker acknowledges appends whose rows were committed but not
// positioned by their group's own round: a transaction older than theirs
// was still open (anywhere in the cluster), or another process's round
// took them first. Each time something may have changed — a NOTIFY from
// any process's round, a local round, a poll with backoff — it looks the
// rows up, after a round of its own (in the same round trip) when it polls.
// When idle it still runs a round every PollInterval, for rows other
// processes committed and never positioned.
func (s *Store) runAcker() {
	defer close(s.ackerDone)
	var pending []*pendingAck
	in := s.ackCh
	var closing <-chan time.Time
	idle := time.NewTicker(s.opts.PollInterval)
	defer idle.Stop()
	backoff := minAckPoll
	// round says whether the next look runs a sequencer round first. It
	// does not when another round just ran (a NOTIFY or a local round woke
	// the acker, or new appends came from a group whose own round just
	// ran): that round positioned what could be, and more rounds would only
	// queue on the rounds' lock — with several processes writing, their
	// ackers' rounds were most of the queue. A poll still runs one, so that
	// rows nobody else positions are positioned.
	round := true
	for {
		wake := s.notify.wait() // before looking: a later round closes it
		if len(pending) > 0 {
			pending = s.resolve(pending, round)
		}
		round = true
		if in == nil && len(pending) == 0 {
			return
		}
		var poll <-chan time.Time
		var timer *time.Timer
		if len(pending) > 0 {
			timer = time.NewTimer(backoff)
			poll = timer.C
			backoff = min(2*backoff, s.opts.PollInterval)
		}
		select {
		case items, ok := <-in:
			if ok {
				pending = append(pending, items...)
				backoff = minAckPoll
				round = false
			} else { // the writer stopped: Close is waiting
				in = nil
				closing = time.After(closeGrace)
			}
		case <-wake:
			backoff = minAckPoll
			round = false
		case <-poll:
		case <-idle.C:
			if len(pending) == 0 && in != nil {
				s.idleRound()
			}
		case <-closing:
			for _, p := range pending {
				p.req.finish(store.AppendResult{}, fmt.Errorf("%w: the append to %q is committed, but Close came before it was positioned; retry it with the same ids", store.ErrClosed, p.req.stream))
			}
			return
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// idleRound runs a sequencer round and wakes local waiters if it
// positioned anything.
func (s *Store) idleRound() {
	rows, err := s.pool.Query(s.ctx, s.q.sequence, lockClassSequence, s.key, s.channel, roundLimit)
	if err != nil {
		return // the next tick tries again
	}
	if round, err := scanRound(rows); err == nil && len(round) > 0 {
		s.placed.add(round)
		s.notify.broadcast()
	}
}

// placements remembers where this process's recent rounds placed
// transactions (their first positions, by key), as the rounds' own results
// said: a committer's round often places the other committer's group too,
// and the acker then delivers it without asking the database. (Not from
// NOTIFY payloads: a notification only wakes, since anyone may send one.)
// It only saves round trips: it forgets everything when it grows too
// large, and what it lacks is looked up.
type placements struct {
	mu sync.Mutex
	m  map[int64]int64
}

const placementsMax = 1 << 14

func (p *placements) add(round map[int64]roundRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m)+len(round) > placementsMax {
		p.m = make(map[int64]int64, len(round))
	}
	for tx, r := range round {
		p.m[tx] = r.first
	}
}

func (p *placements) get(tx int64) (first int64, ok bool) {
	if tx == 0 {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first, ok = p.m[tx]
	return first, ok
}

// roundRow is one transaction a sequencer round positioned.
type roundRow struct {
	first, count int64
}

// scanRound reads strata_sequence's rows: per transaction positioned (by
// key), the first position and the number of rows.
func scanRound(rows pgx.Rows) (map[int64]roundRow, error) {
	defer rows.Close()
	var m map[int64]roundRow
	for rows.Next() {
		var tx int64
		var r roundRow
		if err := rows.Scan(&tx, &r.first, &r.count); err != nil {
			return m, err
		}
		if m == nil {
			m = make(map[int64]roundRow)
		}
		m[tx] = r
	}
	return m, rows.Err()
}

// resolve runs a round, looks up the rows pending needs, delivers every
// outcome that is complete and returns the rest. Appends whose callers
// have gone (their context ended) are dropped: the caller already has its
// answer.
func (s *Store) resolve(pending []*pendingAck, round bool) []*pendingAck {
	keep := pending[:0]
	var streams []string
	var versions []int64
	for _, p := range pending {
		if err := p.req.ctx.Err(); err != nil {
			p.req.finish(store.AppendResult{}, err)
			continue
		}
		if first, ok := s.placed.get(p.tx); ok && p.status == statusAppended {
			// A round of this process placed the transaction.
			s.deliver(p, []pgtype.Int8{{Int64: first + p.off, Valid: true}})
			continue
		}
		keep = append(keep, p)
		for _, v := range p.keys() {
			streams = append(streams, p.req.stream)
			versions = append(versions, v)
		}
	}
	clear(pending[len(keep):])
	pending = keep
	if len(pending) == 0 {
		return pending
	}

	// One round trip: the round and the lookup run in one implicit
	// transaction, so the lookup sees what the round did.
	b := &pgx.Batch{}
	if round {
		b.Queue(s.q.sequence, lockClassSequence, s.key, s.channel, roundLimit)
	}
	b.Queue(s.q.positions, streams, versions)
	br := s.pool.SendBatch(s.ctx, b)
	var err error
	if round {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var placed map[int64]roundRow
			if placed, err = scanRound(rows); err == nil && len(placed) > 0 {
				s.placed.add(placed)
				s.notify.broadcast()
			}
		}
	}
	var positions []pgtype.Int8
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			positions, err = pgx.CollectRows(rows, pgx.RowTo[pgtype.Int8])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil || len(positions) != len(streams) {
		return pending // try again at the next wake-up or poll
	}

	keep = pending[:0]
	for _, p := range pending {
		n := len(p.keys())
		pos := positions[:n]
		positions = positions[n:]
		if !allValid(pos) {
			keep = append(keep, p)
			continue
		}
		s.deliver(p, pos)
	}
	clear(pending[len(keep):])
	return keep
}

// deliver finishes p, whose rows are all positioned at pos.
func (s *Store) deliver(p *pendingAck, pos []pgtype.Int8) {
	r := p.req
	n := int64(len(r.ids))
	switch p.status {
	case statusAppended:
		s.positioned.add(r.stream, uint64(p.version))
		first := uint64(pos[0].Int64)
		r.finish(store.AppendResult{Version: uint64(p.version), FirstPosition: first, LastPosition: first + uint64(n) - 1}, nil)
	case statusRetry:
		s.positioned.add(r.stream, uint64(p.version))
		first, last := pos[0].Int64, pos[1].Int64
		if last-first != n-1 {
			// The ids sit at the place named, but were written by more than
			// one append: there is no single original result to return.
			r.finish(store.AppendResult{}, fmt.Errorf("%w: the ids of this append to %q are at versions %d..%d already, but were written by more than one append", event.ErrInvalid, r.stream, p.version-n+1, p.version))
			return
		}
		r.finish(store.AppendResult{Version: uint64(p.version), FirstPosition: uint64(first), LastPosition: uint64(last)}, nil)
	default:
		s.positioned.add(r.stream, uint64(p.version))
		r.finish(store.AppendResult{}, wrongVersion(r, p.version))
	}
}

func allValid(pos []pgtype.Int8) bool {
	for _, p := range pos {
		if !p.Valid {
			return false
		}
	}
	return true
}
