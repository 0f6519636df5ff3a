package pgstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A long-open transaction anywhere in the cluster holds the log back: rows
// committed after it began cannot be positioned until it ends (see the
// package doc). Nothing is lost, but appenders and subscribers wait, and an
// operator needs to know who they wait for. The stall watcher looks every
// second for committed rows that no round could position for StallAfter,
// and then names the oldest open transaction: a log line when it starts
// (again every 30 s while it lasts, and when it ends), and Stall() for
// metrics.

// Stall is how the log is held back, if it is.
type Stall struct {
	// Waiting is the number of committed events that cannot be positioned
	// yet; 0 when the log is not held back.
	Waiting int64
	// For is how long the oldest of them has been waiting (as the watcher
	// saw it).
	For time.Duration
	// Blocker describes the oldest open transaction in the cluster, the
	// one positions wait for: a session (pid, user, application, client,
	// database, state, how long its transaction has been open, its query)
	// or a prepared transaction.
	Blocker string
}

const (
	stallCheck   = time.Second
	stallRepeat  = 30 * time.Second
	maxStallText = 300
)

type stallWatch struct {
	mu     sync.Mutex
	cur    Stall
	oldest string    // the min txid of the waiting rows last seen
	since  time.Time // when that txid was first seen waiting
	logged time.Time // when the current stall was last logged
}

// Stall reports whether committed events are waiting for an older open
// transaction, and which.
func (s *Store) Stall() Stall {
	s.stall.mu.Lock()
	defer s.stall.mu.Unlock()
	return s.stall.cur
}

func (s *Store) runStallWatch() {
	defer close(s.stallDone)
	t := time.NewTicker(stallCheck)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.checkStall(time.Now())
		}
	}
}

// checkStall is one look; now is the watcher's clock.
func (s *Store) checkStall(now time.Time) {
	var oldest pgtype.Text
	var waiting int64
	err := s.pool.QueryRow(s.ctx, s.q.waiting).Scan(&oldest, &waiting)
	if err != nil {
		return // the next look tries again
	}
	w := &s.stall
	w.mu.Lock()
	defer w.mu.Unlock()
	if !oldest.Valid {
		if w.cur.Waiting > 0 {
			s.opts.Logger.Info("pgstore: the log moves again", "waited", w.cur.For.Round(time.Millisecond))
		}
		w.cur, w.oldest = Stall{}, ""
		return
	}
	if oldest.String != w.oldest {
		// Other rows wait now (those before were positioned): a new wait,
		// which a round may well end in a moment.
		w.oldest, w.since = oldest.String, now
	}
	waited := now.Sub(w.since)
	if waited < s.opts.StallAfter {
		return
	}
	blocker := s.findBlocker()
	started := w.cur.Waiting == 0
	changed := blocker != w.cur.Blocker
	w.cur = Stall{Waiting: waiting, For: waited, Blocker: blocker}
	if started || changed || now.Sub(w.logged) >= stallRepeat {
		w.logged = now
		s.opts.Logger.Warn("pgstore: committed events wait for an older open transaction; appends and subscribers wait until it ends",
			"waiting_events", waiting, "for", waited.Round(time.Millisecond), "blocker", blocker)
	}
}

// findBlocker names the oldest open transaction of the cluster.
func (s *Store) findBlocker() string {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	var who string
	err := s.pool.QueryRow(ctx, s.q.blocker).Scan(&who)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "none found (it may have just ended, or this role may not see other users' sessions: grant pg_read_all_stats)"
	case err != nil:
		return "unknown: " + err.Error()
	}
	if len(who) > maxStallText {
		who = who[:maxStallText] + "…"
	}
	return who
}
