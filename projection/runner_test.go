package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// sums is a Go projection: per stream, the sum of the events' "n" and the
// count of events. Applying an event twice, or missing one, shows.
type sums struct {
	failOn string // an event type Apply refuses
}

func (sums) Name() string { return "sums" }

func (sums) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS sums (stream TEXT PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL, last_position BIGINT NOT NULL)`)
	return err
}

func (s sums) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO sums (stream, total, events, last_position) VALUES ($1, $2, 1, $3)
ON CONFLICT(stream) DO UPDATE SET total = sums.total + excluded.total, events = sums.events + 1, last_position = excluded.last_position`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range batch {
		if r.Type == s.failOn {
			return fmt.Errorf("sums: cannot handle %s", r.Type)
		}
		var v struct{ N int }
		if err := json.Unmarshal(r.Data, &v); err != nil {
			return fmt.Errorf("sums: event %d: %w", r.Position, err)
		}
		if _, err := stmt.ExecContext(ctx, r.Stream, v.N, r.Position); err != nil {
			return err
		}
	}
	return nil
}

type fixture struct {
	log *eventlog.Log
	db  *sql.DB
	// newDB opens another empty read-model database of db's kind.
	newDB func(t *testing.T) *sql.DB
}

// newFixture is a log with a SQLite read-model database.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, sqliteDB)
}

func newFixtureWith(t *testing.T, newDB func(t *testing.T) *sql.DB) *fixture {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(t.TempDir(), "log"), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &fixture{log: l, db: newDB(t), newDB: newDB}
}

// sibling is f's log with another empty database of f's kind.
func (f *fixture) sibling(t *testing.T) *fixture {
	t.Helper()
	return &fixture{log: f.log, db: f.newDB(t), newDB: f.newDB}
}

func sqliteDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "readmodels.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var pgSchemas atomic.Int64

// postgresDB opens a fresh schema of the PostgreSQL named by
// STRATA_TEST_POSTGRES_URL, dropped when the test ends.
func postgresDB(t *testing.T) *sql.DB {
	t.Helper()
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the PostgreSQL read-model tests (set it to a server's URL to run them)")
	}
	schema := fmt.Sprintf("strata_projection_test_%d_%d", os.Getpid(), pgSchemas.Add(1))
	ctx := context.Background()
	db, err := OpenPostgres(ctx, url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		db.Close()
	})
	return db
}

// eachDB runs test on a SQLite and on a PostgreSQL read-model database: the
// runtime is the same on both.
func eachDB(t *testing.T, test func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) { test(t, newFixtureWith(t, sqliteDB)) })
	t.Run("postgres", func(t *testing.T) { test(t, newFixtureWith(t, postgresDB)) })
}

func (f *fixture) append(t *testing.T, stream, typ string, n int) store.AppendResult {
	t.Helper()
	res, err := f.log.Append(context.Background(), stream, store.Any, event.Event{Type: typ, Data: []byte(fmt.Sprintf(`{"n":%d}`, n))})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// start runs r until the test ends.
func start(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run ended with %v", err)
		}
	})
}

func waitFor(t *testing.T, r *Runner, pos uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		st := r.Status()
		if st.Failure != nil {
			t.Fatalf("waiting for position %d: %v (failure %+v)", pos, err, *st.Failure)
		}
		t.Fatalf("waiting for position %d: %v (status %+v)", pos, err, st)
	}
}

func sumsTable(t *testing.T, db *sql.DB) map[string][2]int {
	t.Helper()
	rows, err := db.Query(`SELECT stream, total, events FROM sums ORDER BY stream`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][2]int{}
	for rows.Next() {
		var s string
		var total, n int
		rows.Scan(&s, &total, &n)
		out[s] = [2]int{total, n}
	}
	return out
}

func TestRunnerAppliesHistoryThenLive(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		for i := range 50 {
			f.append(t, fmt.Sprintf("s-%d", i%3), "t", i)
		}
		r := NewRunner(sums{}, f.db, f.log, Options{BatchSize: 7})
		start(t, r)
		waitFor(t, r, 50)
		last := f.append(t, "s-0", "t", 1000) // live
		waitFor(t, r, last.LastPosition)
		got := sumsTable(t, f.db)
		// s-0 got i = 0,3,...,48 (17 events) and 1000.
		if got["s-0"] != [2]int{0 + 3*(16*17/2) + 1000, 18} || got["s-1"][1] != 17 || got["s-2"][1] != 16 {
			t.Fatalf("sums = %v", got)
		}
		if pos, err := checkpoint(context.Background(), f.db, "sums"); err != nil || pos != last.LastPosition {
			t.Fatalf("checkpoint = %d, %v", pos, err)
		}
	})
}

func TestRunnerResumesFromItsCheckpoint(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		for i := range 20 {
			f.append(t, "s", "t", i)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := NewRunner(sums{}, f.db, f.log, Options{})
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		waitFor(t, r, 20)
		cancel()
		<-done
		for i := range 5 {
			f.append(t, "s", "t", 100+i)
		}
		r2 := NewRunner(sums{}, f.db, f.log, Options{})
		start(t, r2)
		waitFor(t, r2, 25)
		if got := sumsTable(t, f.db)["s"]; got != [2]int{190 + 510, 25} {
			t.Fatalf("after restart sums = %v, want each event once", got)
		}
	})
}

func TestFailingEventStopsTheProjectionVisibly(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		f.append(t, "a", "t", 1)
		f.append(t, "a", "t", 2)
		bad := f.append(t, "b", "poison", 0)
		f.append(t, "a", "t", 3)
		r := NewRunner(sums{failOn: "poison"}, f.db, f.log, Options{Retries: 2, Backoff: time.Millisecond})
		start(t, r)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := r.WaitFor(ctx, bad.LastPosition)
		if err == nil || !strings.Contains(err.Error(), "failed") {
			t.Fatalf("WaitFor past the poison = %v", err)
		}
		st := r.Status()
		if st.State != StateFailed || st.Failure == nil || st.Failure.Position != bad.LastPosition || st.Failure.Type != "poison" || !strings.Contains(st.Failure.Err, "cannot handle poison") {
			t.Fatalf("status = %+v", st)
		}
		// Everything before the poison was applied exactly once; nothing after.
		if got := sumsTable(t, f.db); got["a"] != [2]int{3, 2} || st.Position != bad.LastPosition-1 {
			t.Fatalf("sums %v at position %d", got, st.Position)
		}
		// Resume retries the same event (still failing).
		if err := r.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.WaitFor(ctx, bad.LastPosition); err == nil {
			t.Fatal("resume got past the poison")
		}
		// Skip records the skip and moves on.
		if err := r.Skip(ctx, "bad data, ticket 42"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, r, bad.LastPosition+1)
		if got := sumsTable(t, f.db); got["a"] != [2]int{6, 3} || got["b"] != [2]int{} {
			t.Fatalf("after skip sums = %v", got)
		}
		var action, detail string
		var pos uint64
		if err := f.db.QueryRow(`SELECT action, position, detail FROM strata_projection_log WHERE projection = 'sums' AND action = 'skip'`).Scan(&action, &pos, &detail); err != nil {
			t.Fatal(err)
		}
		if action != "skip" || pos != bad.LastPosition || !strings.Contains(detail, "ticket 42") || !strings.Contains(detail, "poison") {
			t.Fatalf("log: %s %d %s", action, pos, detail)
		}
		if err := r.Skip(ctx, "again"); !errors.Is(err, ErrNotFailed) {
			t.Fatalf("skip while running = %v", err)
		}
	})
}

func TestPauseAndResume(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		r := NewRunner(sums{}, f.db, f.log, Options{})
		start(t, r)
		first := f.append(t, "s", "t", 1)
		waitFor(t, r, first.LastPosition)
		ctx := context.Background()
		if err := r.Pause(ctx); err != nil || r.State() != StatePaused {
			t.Fatalf("pause: %v, state %s", err, r.State())
		}
		second := f.append(t, "s", "t", 2)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := r.WaitFor(short, second.LastPosition); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a paused projection moved: %v", err)
		}
		if err := r.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, r, second.LastPosition)
		if got := sumsTable(t, f.db)["s"]; got != [2]int{3, 2} {
			t.Fatalf("sums = %v", got)
		}
	})
}

func TestEventsAreUpcastBeforeTheProjection(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		reg := event.NewRegistry()
		type tV2 struct{ N int }
		// Version 1 stored the number as "value".
		err := event.Register[tV2](reg, "t", event.Version(2), event.Upcast(1, func(b []byte) ([]byte, error) {
			var v1 struct{ Value int }
			json.Unmarshal(b, &v1)
			return json.Marshal(map[string]int{"n": v1.Value})
		}))
		if err != nil {
			t.Fatal(err)
		}
		f.log.Append(context.Background(), "s", store.Any, event.Event{Type: "t", Schema: 1, Data: []byte(`{"value":40}`)})
		last := f.append(t, "s", "unregistered", 2)
		r := NewRunner(sums{}, f.db, f.log, Options{Registry: reg})
		start(t, r)
		waitFor(t, r, last.LastPosition)
		if got := sumsTable(t, f.db)["s"]; got != [2]int{42, 2} {
			t.Fatalf("sums = %v", got)
		}
	})
}

// endingStore's subscriptions yield the log's first n records, then fail.
type endingStore struct {
	store.Store
	n int
}

var errSubscriptionBroke = errors.New("subscription broke")

func (e endingStore) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		i := 0
		for r, err := range e.Store.ReadAll(ctx, store.ReadAllOptions{After: opts.After}) {
			if err != nil || i == e.n || !yield(r, nil) {
				break
			}
			i++
		}
		yield(event.Record{}, errSubscriptionBroke)
	}
}

// A subscription that ends while a batch is being gathered still gets the
// gathered events applied, and Run reports why it ended instead of waiting.
func TestSubscriptionEndDuringGatherAppliesTheBatch(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.append(t, "s", "t", i+1)
	}
	r := NewRunner(sums{}, f.db, endingStore{Store: f.log, n: 3}, Options{BatchSize: 1000, MaxDelay: time.Hour})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, errSubscriptionBroke) {
			t.Fatalf("Run = %v, want the subscription's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run waited for its batch deadline instead of ending with the subscription")
	}
	if got := sumsTable(t, f.db)["s"]; got != [2]int{6, 3} || r.Position() != 3 {
		t.Fatalf("sums %v at %d: the gathered batch was not applied", got, r.Position())
	}
}

// preparedSums prepares each event's number on the reading goroutine.
type preparedSums struct{ sums }

func (preparedSums) Prepare(r *event.Record) (any, error) {
	if r.Type == "unpreparable" {
		return nil, errors.New("cannot prepare")
	}
	var v struct{ N int }
	err := json.Unmarshal(r.Data, &v)
	return v.N, err
}

func (preparedSums) ApplyPrepared(ctx context.Context, tx *sql.Tx, batch []event.Record, prepared []any) error {
	for i, r := range batch {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sums (stream, total, events, last_position) VALUES ($1, $2, 1, $3)
ON CONFLICT(stream) DO UPDATE SET total = sums.total + excluded.total, events = sums.events + 1, last_position = excluded.last_position`, r.Stream, prepared[i].(int), r.Position); err != nil {
			return err
		}
	}
	return nil
}

func TestPreparingProjection(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		for i := range 10 {
			f.append(t, "s", "t", i)
		}
		bad := f.append(t, "s", "unpreparable", 100)
		r := NewRunner(preparedSums{}, f.db, f.log, Options{Retries: 1, Backoff: time.Millisecond})
		start(t, r)
		waitState(t, r, StateFailed)
		st := r.Status()
		if st.Failure.Position != bad.LastPosition || !strings.Contains(st.Failure.Err, "cannot prepare") {
			t.Fatalf("failure = %+v", st.Failure)
		}
		if got := sumsTable(t, f.db)["s"]; got != [2]int{45, 10} {
			t.Fatalf("sums = %v (prepared values applied once each?)", got)
		}
	})
}

// Two runners of one projection (two `strata projection run` by mistake)
// never apply an event twice: a commit only moves the checkpoint from where
// its runner found it, and the loser follows the winner.
func TestTwoRunnersOfOneProjectionApplyEachEventOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, f *fixture) {
		for i := range 300 {
			f.append(t, fmt.Sprintf("s-%d", i%5), "t", i)
		}
		a := NewRunner(sums{}, f.db, f.log, Options{BatchSize: 7})
		b := NewRunner(sums{}, f.db, f.log, Options{BatchSize: 11})
		start(t, a)
		start(t, b)
		last := f.append(t, "s-0", "t", 1000)
		waitFor(t, a, last.LastPosition)
		waitFor(t, b, last.LastPosition)
		total, n := 0, 0
		for _, v := range sumsTable(t, f.db) {
			total += v[0]
			n += v[1]
		}
		if n != 301 || total != 299*300/2+1000 {
			t.Fatalf("%d events summing to %d: some were applied twice or lost", n, total)
		}
	})
}
