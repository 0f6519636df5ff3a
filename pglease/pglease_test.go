package pglease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

var schemas atomic.Int64

// testPool connects to STRATA_TEST_POSTGRES_URL and returns a fresh schema
// name, dropped when the test ends.
func testPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the lease tests (set it to a PostgreSQL URL to run them)")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("pglease_test_%d_%d", os.Getpid(), schemas.Add(1))
	t.Cleanup(func() {
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		pool.Close()
	})
	return pool, schema
}

// tracker records which node runs which lease's work, and fails the test
// if two run one lease at once.
type tracker struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]string // lease → node
	starts  map[string]int
}

func newTracker(t *testing.T) *tracker {
	return &tracker{t: t, running: map[string]string{}, starts: map[string]int{}}
}

func (tr *tracker) work(node string) Work {
	return func(ctx context.Context, l Lease) error {
		tr.mu.Lock()
		if other, ok := tr.running[l.Name]; ok {
			tr.t.Errorf("lease %s runs on %s and %s at once", l.Name, other, node)
		}
		tr.running[l.Name] = node
		tr.starts[l.Name]++
		tr.mu.Unlock()
		<-ctx.Done()
		tr.mu.Lock()
		delete(tr.running, l.Name)
		tr.mu.Unlock()
		return ctx.Err()
	}
}

// perNode returns how many leases' work each node runs.
func (tr *tracker) perNode() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for _, n := range tr.running {
		out[n]++
	}
	return out
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type node struct {
	s      *Sharer
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, pool *pgxpool.Pool, schema, name string, items []string, tr *tracker) *node {
	t.Helper()
	s, err := New(context.Background(), pool, Options{Schema: schema, Node: name, TTL: time.Second, Renew: 100 * time.Millisecond, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- s.Run(ctx, items, tr.work(name)) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	if err := <-n.done; err != nil && !errors.Is(err, context.Canceled) {
		panic(err)
	}
	n.done <- context.Canceled // stop is idempotent
}

func TestNodesShareTheWorkAndTakeOverWhenOneLeaves(t *testing.T) {
	pool, schema := testPool(t)
	items := []string{"p#0/3", "p#1/3", "p#2/3", "q#0/3", "q#1/3", "q#2/3"}
	tr := newTracker(t)
	a := startNode(t, pool, schema, "a", items, tr)
	eventually(t, "a alone runs all six", func() bool { return tr.perNode()["a"] == 6 })
	startNode(t, pool, schema, "b", items, tr)
	startNode(t, pool, schema, "c", items, tr)
	eventually(t, "three nodes run two each", func() bool {
		m := tr.perNode()
		return m["a"] == 2 && m["b"] == 2 && m["c"] == 2
	})
	if got := len(a.s.Held()); got != 2 {
		t.Fatalf("a holds %d leases", got)
	}
	a.stop() // gives its leases back
	eventually(t, "two nodes run three each", func() bool {
		m := tr.perNode()
		return m["a"] == 0 && m["b"] == 3 && m["c"] == 3
	})
}

// A node that dies keeps its leases until they expire; then the others
// take its work over.
func TestLeasesOfADeadNodeAreTakenOverAfterTheyExpire(t *testing.T) {
	pool, schema := testPool(t)
	ctx := context.Background()
	items := []string{"x", "y"}
	if _, err := New(ctx, pool, Options{Schema: schema}); err != nil { // creates the tables
		t.Fatal(err)
	}
	// The dead node: it holds x for 1.5 s more and never renews.
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.strata_leases (name, holder, token, expires_at) VALUES ('x', 'dead', 7, clock_timestamp() + interval '1.5 s')`, schema)); err != nil {
		t.Fatal(err)
	}
	tr := newTracker(t)
	startNode(t, pool, schema, "live", items, tr)
	eventually(t, "live runs y", func() bool { return tr.perNode()["live"] >= 1 })
	took := time.Now()
	eventually(t, "live runs x too", func() bool { return tr.perNode()["live"] == 2 })
	if time.Since(took) < 500*time.Millisecond {
		t.Fatalf("x was taken over after %v, before its lease expired", time.Since(took))
	}
	var holder string
	var token int64
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT holder, token FROM %s.strata_leases WHERE name = 'x'`, schema)).Scan(&holder, &token); err != nil {
		t.Fatal(err)
	}
	if holder != "live" || token != 8 {
		t.Fatalf("x held by %s with token %d; want live with 8 (a new token per holder)", holder, token)
	}
}

// A node whose lease another node took (it was cut off for longer than
// the TTL) stops that work at its next renewal.
func TestANodeStopsWorkWhoseLeaseWasTaken(t *testing.T) {
	pool, schema := testPool(t)
	ctx := context.Background()
	tr := newTracker(t)
	n := startNode(t, pool, schema, "n", []string{"only"}, tr)
	eventually(t, "n runs the work", func() bool { return tr.perNode()["n"] == 1 })
	if _, err := pool.Exec(ctx, fmt.Sprintf(`UPDATE %s.strata_leases SET holder = 'thief', token = token + 1, expires_at = clock_timestamp() + interval '1 hour'`, schema)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n stops", func() bool { return tr.perNode()["n"] == 0 })
	if len(n.s.Held()) != 0 {
		t.Fatalf("n still holds %v", n.s.Held())
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{{TTL: time.Second, Renew: time.Second}, {TTL: -1}, {TTL: time.Nanosecond, Renew: time.Nanosecond / 4}} {
		if err := o.ensureDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{}
	if err := o.ensureDefaults(); err != nil || o.TTL != 10*time.Second || o.Renew != 2500*time.Millisecond || o.Node == "" {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
}

// A node that cannot renew (here: the lease table locked by someone else,
// so its renewals hang) stops its work once its last renewal has run out,
// before another node could take it; it starts it again once renewals
// succeed and the lease is still its own.
func TestWorkStopsWhenRenewalsCannotBeMade(t *testing.T) {
	pool, schema := testPool(t)
	ctx := context.Background()
	tr := newTracker(t)
	startNode(t, pool, schema, "n", []string{"w"}, tr)
	eventually(t, "n runs w", func() bool { return tr.perNode()["n"] == 1 })

	locker, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Release()
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`LOCK TABLE %s.strata_leases IN ACCESS EXCLUSIVE MODE`, schema)); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	eventually(t, "n stops w", func() bool { return tr.perNode()["n"] == 0 })
	if d := time.Since(locked); d > 1500*time.Millisecond {
		t.Fatalf("n stopped %v after its renewals began to hang; its TTL is 1 s", d)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n runs w again", func() bool { return tr.perNode()["n"] == 1 })
}
