// Package pglease shares work among Strata nodes that use one PostgreSQL
// database. Each piece of work (one partition of a projection, say) is a
// lease, a row in strata_leases; a node does a piece of work only while it
// holds its lease, and holds it only while it keeps renewing it. A node
// that dies stops renewing, and after the lease's time to live another node
// takes the work over. Every node aims at an equal share of the work, so
// leases move to a node that joins and away from one that leaves.
//
// Expiry is decided by the database's clock, never by comparing the
// nodes' clocks. A node stops its own work before its last successful
// renewal runs out (measured from when it asked, on its own clock), so a
// node cut off from the database stops before anyone else may start. Even
// so, leases only decide who works: work must be safe against a holder that
// has not noticed yet. Strata's projections are: a batch commits only if
// the checkpoint is still where its runner found it, so two holders never
// apply an event twice. Lease.Token grows with every acquisition, for work
// that wants a fencing token.
package pglease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configure a Sharer. The zero value is valid.
type Options struct {
	// Schema holds the lease tables (created if needed). Default "public".
	Schema string
	// Node names this node; it must be unique among the nodes sharing the
	// work. Default: host name, process id and a random suffix.
	Node string
	// TTL is how long a lease lasts without renewal: how long work waits
	// after its node died. Default 10s.
	TTL time.Duration
	// Renew is how often leases are renewed and the shares recomputed.
	// Default TTL/4.
	Renew time.Duration
	// Backoff is the first delay before work that returned an error is
	// started again (doubling to a minute). Default 1s.
	Backoff time.Duration
	// Logger receives acquisitions, releases and failures. Default: discard.
	Logger *slog.Logger
}

func (o *Options) ensureDefaults() error {
	if o.Schema == "" {
		o.Schema = "public"
	}
	if o.Node == "" {
		host, _ := os.Hostname()
		o.Node = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
	}
	if o.TTL == 0 {
		o.TTL = 10 * time.Second
	}
	if o.Renew == 0 {
		o.Renew = o.TTL / 4
	}
	if o.Backoff == 0 {
		o.Backoff = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.TTL < 0 || o.Renew < 0 || o.Backoff < 0:
		return errors.New("pglease: TTL, Renew and Backoff must not be negative")
	case o.Renew >= o.TTL/2:
		return fmt.Errorf("pglease: Renew (%v) must be less than half of TTL (%v), or one slow renewal loses every lease", o.Renew, o.TTL)
	case o.TTL < time.Millisecond:
		return fmt.Errorf("pglease: TTL %v is too short", o.TTL)
	}
	return nil
}

// Lease is a piece of work a node holds.
type Lease struct {
	Name string
	// Token is the lease's acquisition count: every new holder gets a
	// larger one.
	Token int64
}

// Work does the work of one lease until ctx ends (the lease was lost or
// given back, or the node is stopping). An error ends this attempt; the
// work is started again after a backoff, as long as the lease is held.
type Work func(ctx context.Context, l Lease) error

// Sharer takes part, for one node, in sharing work among nodes.
type Sharer struct {
	pool *pgxpool.Pool
	opts Options
	q    queries

	mu   sync.Mutex
	held map[string]*running // by lease name, stopping ones included
	// draining counts work told to stop and not yet stopped.
	draining sync.WaitGroup
}

// running is a lease this node holds and the work it runs.
type running struct {
	lease    Lease
	cancel   context.CancelFunc
	done     chan struct{}
	stopping bool
}

// New prepares a Sharer on pool, creating the lease tables if needed.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Sharer, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	s := &Sharer{pool: pool, opts: opts, q: newQueries(pgx.Identifier{opts.Schema}.Sanitize()), held: map[string]*running{}}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Node returns this node's name.
func (s *Sharer) Node() string { return s.opts.Node }

// Held returns the leases this node holds, by name.
func (s *Sharer) Held() []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, 0, len(s.held))
	for _, r := range s.held {
		if !r.stopping {
			out = append(out, r.lease)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// setupLockKey serialises the creation of the tables by nodes starting
// together (CREATE … IF NOT EXISTS is not atomic in PostgreSQL).
const setupLockKey = 0x53545211 // "STR\x11"

func (s *Sharer) setup(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, setupLockKey); err != nil {
			return fmt.Errorf("pglease: setup: %w", err)
		}
		if _, err := tx.Exec(ctx, s.q.ddl); err != nil {
			return fmt.Errorf("pglease: setup: %w", err)
		}
		return nil
	})
}

// Run shares items among the live nodes until ctx ends, running work for
// each lease this node holds. Every Renew it renews its leases, counts the
// live nodes, gives back leases beyond its share (ceil(items / nodes))
// after stopping their work, and claims free or expired ones up to its
// share. When ctx ends it stops all its work, gives its leases back (so
// that others need not wait for them to expire) and returns ctx's error.
// Run returns early only if items is empty or has duplicates.
func (s *Sharer) Run(ctx context.Context, items []string, work Work) error {
	if len(items) == 0 {
		return errors.New("pglease: nothing to share")
	}
	sorted := slices.Clone(items)
	slices.Sort(sorted)
	if len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		return errors.New("pglease: duplicate items")
	}
	defer s.stopAll()

	// validUntil is when the last successful renewal runs out, on this
	// node's clock; past it, work stops whatever the database says later.
	var validUntil time.Time
	tick := time.NewTicker(s.opts.Renew)
	defer tick.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		asked := time.Now()
		// A round that hangs (a lock, a network without answers) must not
		// keep this loop from stopping the work when the leases run out.
		rctx, cancel := context.WithTimeout(ctx, s.opts.TTL/2)
		err := s.round(rctx, sorted, work)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.opts.Logger.Warn("pglease: renewal failed", "node", s.opts.Node, "err", err)
		} else {
			validUntil = asked.Add(s.opts.TTL)
		}
		// Past the last renewal's end, stop at once (and wait for the tick
		// to try again: a database that is down is not asked in a loop).
		if !validUntil.IsZero() {
			if d := time.Until(validUntil); d > 0 {
				expiry.Reset(d)
			} else {
				s.expire()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-expiry.C:
			if time.Until(validUntil) <= 0 {
				s.expire()
			}
		}
	}
}

// expire stops the work of every lease, which may be another node's by now.
func (s *Sharer) expire() {
	if names := s.names(); len(names) > 0 {
		s.opts.Logger.Error("pglease: leases ran out without renewal; stopping their work", "node", s.opts.Node, "leases", names)
		s.stop(names, false)
	}
}

// round is one renewal: heartbeat, renew, rebalance.
func (s *Sharer) round(ctx context.Context, items []string, work Work) error {
	ttl := s.opts.TTL.Seconds()
	b := &pgx.Batch{}
	b.Queue(s.q.heartbeat, s.opts.Node, ttl)
	b.Queue(s.q.ensure, items)
	b.Queue(s.q.renew, s.opts.Node, ttl, items)
	br := s.pool.SendBatch(ctx, b)
	var nodes int
	err := br.QueryRow().Scan(&nodes)
	if err == nil {
		_, err = br.Exec()
	}
	var renewed []Lease
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			renewed, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Lease])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	// What the database says this node holds is the truth: work whose
	// lease was not renewed stops (another node has it now). Leases whose
	// work is still stopping stay held (and renewed) until it has stopped,
	// and count for nothing.
	busy := s.stoppingNames()
	mine := map[string]Lease{}
	for _, l := range renewed {
		if !busy[l.Name] {
			mine[l.Name] = l
		}
	}
	var lost []string
	for _, name := range s.names() {
		if _, ok := mine[name]; !ok {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		s.opts.Logger.Warn("pglease: leases lost", "node", s.opts.Node, "leases", lost)
		s.stop(lost, false)
	}

	share := (len(items) + nodes - 1) / max(nodes, 1)
	if extra := len(mine) - share; extra > 0 {
		// Give back the last ones by name: with every node doing the same,
		// the freed leases are the ones the newcomers claim.
		names := slices.Sorted(maps.Keys(mine))
		give := names[len(names)-extra:]
		s.stop(give, true)
		s.opts.Logger.Info("pglease: giving leases back", "node", s.opts.Node, "leases", give, "nodes", nodes)
		for _, n := range give {
			delete(mine, n)
		}
	} else if want := share - len(mine); want > 0 {
		rows, err := s.pool.Query(ctx, s.q.claim, s.opts.Node, ttl, items, want)
		if err != nil {
			return err
		}
		claimed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Lease])
		if err != nil {
			return err
		}
		for _, l := range claimed {
			mine[l.Name] = l
		}
		if len(claimed) > 0 {
			s.opts.Logger.Info("pglease: claimed leases", "node", s.opts.Node, "leases", leaseNames(claimed), "nodes", nodes)
		}
	}
	for _, l := range mine {
		s.start(l, work)
	}
	return nil
}

func leaseNames(ls []Lease) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, ",")
}

// names returns the leases whose work runs here and is not stopping.
func (s *Sharer) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.held))
	for n, r := range s.held {
		if !r.stopping {
			out = append(out, n)
		}
	}
	return out
}

// stoppingNames returns the leases whose work is stopping.
func (s *Sharer) stoppingNames() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for n, r := range s.held {
		if r.stopping {
			out[n] = true
		}
	}
	return out
}

// start runs work for l unless it already runs.
func (s *Sharer) start(l Lease, work Work) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[l.Name]; ok {
		return // running, or still stopping
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{lease: l, cancel: cancel, done: make(chan struct{})}
	s.held[l.Name] = r
	go func() {
		defer close(r.done)
		delay := s.opts.Backoff
		for {
			err := work(ctx, l)
			if ctx.Err() != nil {
				return
			}
			s.opts.Logger.Error("pglease: work failed; starting it again", "node", s.opts.Node, "lease", l.Name, "err", err, "after", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(2*delay, time.Minute)
		}
	}()
}

// stop tells the work of the named leases to stop, without waiting: work
// can take a while to stop (a commit waiting for a row lock), and renewals
// must go on meanwhile, for these leases too, so that nobody else starts
// the work before it has stopped here. Once it has, the lease is given back
// if release is set, and forgotten.
func (s *Sharer) stop(names []string, release bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		r, ok := s.held[n]
		if !ok || r.stopping {
			continue
		}
		r.stopping = true
		r.cancel()
		s.draining.Add(1)
		go func() {
			defer s.draining.Done()
			<-r.done
			if release {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := s.pool.Exec(ctx, s.q.release, s.opts.Node, []string{n}); err != nil {
					s.opts.Logger.Warn("pglease: could not give a lease back; it expires", "node", s.opts.Node, "lease", n, "err", err)
				}
			}
			s.mu.Lock()
			if s.held[n] == r {
				delete(s.held, n)
			}
			s.mu.Unlock()
		}()
	}
}

// stopAll stops every work, gives the leases back as each stops, waits
// for all, and leaves.
func (s *Sharer) stopAll() {
	s.stop(s.names(), true)
	s.draining.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, s.q.leave, s.opts.Node); err != nil {
		s.opts.Logger.Warn("pglease: could not leave", "node", s.opts.Node, "err", err)
	}
}
