package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/pglease"
	"github.com/stratadb/strata/pgstore"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

const countsYAML = `name: counts
tables: ["CREATE TABLE IF NOT EXISTS counts (stream TEXT PRIMARY KEY, n BIGINT NOT NULL)"]
on:
  t: "INSERT INTO counts (stream, n) VALUES (:stream, 1) ON CONFLICT (stream) DO UPDATE SET n = counts.n + 1"
`

// Two nodes' read sides: a projection applied on one runs, cut as it was
// applied (whatever the other node's partition count), and both answer
// status and queries at a position.
func TestReadSideSharesAppliedProjections(t *testing.T) {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the cluster read side (set it to a PostgreSQL URL to run it)")
	}
	ctx := context.Background()
	grace := retiredGrace
	retiredGrace = 0 // retired versions are dropped at once
	t.Cleanup(func() { retiredGrace = grace })
	logSchema, rmSchema := randomName("strata_rs_log_"), randomName("strata_rs_rm_")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rows, _ := pool.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $2 || '%'`, logSchema, rmSchema)
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, s := range names { // the versions' schemas too
			pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
		}
		pool.Close()
	})
	log, err := pgstore.Open(ctx, url, pgstore.Options{Schema: logSchema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	side := func(node string, partitions int) *ReadSide {
		db, err := projection.OpenPostgres(ctx, url, rmSchema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		r, err := NewReadSide(ctx, db, url, rmSchema, log, partitions, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- r.Run(rctx, pool, Options{Lease: pglease.Options{Schema: rmSchema, Node: node, TTL: time.Second, Renew: 100 * time.Millisecond}})
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("%s: Run = %v", node, err)
			}
		})
		return r
	}
	a, b := side("a", 3), side("b", 1)
	p, err := projection.ParseSpec([]byte(countsYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, p, []byte(countsYAML)); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, p, []byte(countsYAML)); err != nil { // the same again: nothing changes
		t.Fatal(err)
	}
	var last store.AppendResult
	for i := range 90 {
		if last, err = log.Append(ctx, fmt.Sprintf("s-%d", i%9), store.Any, event.Event{Type: "t", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(r *ReadSide) (bool, int64) {
		var n int64
		reached, _, err := r.Query(ctx, last.LastPosition, `SELECT sum(n) FROM counts`, nil, func(rows *sql.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		var be *projection.BuildingError
		if errors.As(err, &be) {
			return false, 0 // version 1 is still building
		}
		if err != nil {
			t.Fatal(err)
		}
		return reached, n
	}
	eventually(t, "both nodes see every event applied once", func() bool {
		ra, na := count(a)
		rb, nb := count(b)
		if ra && na != 90 || rb && nb != 90 {
			t.Fatalf("counted %d and %d of 90 events", na, nb)
		}
		return ra && rb
	})
	var st readmodels.Status
	eventually(t, "version 1 serves", func() bool {
		st, err = b.Status(ctx, "counts", last.LastPosition)
		return err == nil && st.Version == 1
	})
	if err != nil || st.State != projection.StateRunning || st.Position < last.LastPosition || st.LagEvents != 0 || len(st.Nodes) == 0 {
		t.Fatalf("status on b: %+v, %v", st, err)
	}
	for _, n := range st.Nodes {
		if n != "a" && n != "b" {
			t.Fatalf("status names node %q", n)
		}
	}
	var parts int
	pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{a.schemaOf("counts", 1)}.Sanitize()+`.strata_checkpoints WHERE projection LIKE 'counts#%/3'`).Scan(&parts)
	if parts != 3 {
		t.Fatalf("%d checkpoints of counts#k/3: the projection was not cut as applied", parts)
	}

	// A changed definition builds version 2 beside version 1, which
	// answers until version 2 has caught up and takes over.
	changed := strings.NewReplacer("n BIGINT NOT NULL)", "n BIGINT NOT NULL, twice BIGINT NOT NULL DEFAULT 2)", "n = counts.n + 1", "n = counts.n + 1, twice = counts.twice + 2").Replace(countsYAML)
	p2, err := projection.ParseSpec([]byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, p2, []byte(changed)); err != nil {
		t.Fatalf("a changed definition: %v", err)
	}
	if st, _ := a.Status(ctx, "counts", 0); st.Version != 1 || st.Building == nil || st.Building.Version != 2 {
		t.Fatalf("while version 2 builds: %+v", st)
	}
	eventually(t, "version 2 serves", func() bool {
		st, err := a.Status(ctx, "counts", 0)
		return err == nil && st.Version == 2 && st.Building == nil
	})
	var twice int64
	if _, _, err := a.Query(ctx, last.LastPosition, `SELECT sum(twice) FROM counts`, nil, func(rows *sql.Rows) error {
		for rows.Next() {
			rows.Scan(&twice)
		}
		return rows.Err()
	}); err != nil || twice != 180 {
		t.Fatalf("version 2's column: %d, %v", twice, err)
	}
	eventually(t, "version 1's schema is dropped", func() bool {
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, a.schemaOf("counts", 1)).Scan(&n)
		return n == 0
	})
	// A rebuild: version 3, the same definition, from the start.
	if err := a.Rebuild(ctx, "counts"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "version 3 serves", func() bool {
		st, err := b.Status(ctx, "counts", 0)
		return err == nil && st.Version == 3 && st.Position >= last.LastPosition
	})
	if err := a.Rebuild(ctx, "nothing"); !errors.Is(err, projection.ErrUnknownProjection) {
		t.Fatalf("rebuild of an unknown projection: %v", err)
	}
	if err := a.Skip(ctx, "counts", "nothing failed"); !errors.Is(err, projection.ErrNotFailed) {
		t.Fatalf("skip of a running projection: %v", err)
	}
	if err := a.SetPaused(ctx, "counts", true); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.Status(ctx, "counts", 0); st.State != projection.StatePaused {
		t.Fatalf("after pause: %+v", st)
	}
	if _, err := a.Status(ctx, "nothing", 0); !errors.Is(err, projection.ErrUnknownProjection) {
		t.Fatalf("status of an unknown projection: %v", err)
	}
}

// BenchmarkReadSideQuery is one read-your-writes query on a cluster's read
// side: the versions, the checkpoints and the statement, in one snapshot.
func BenchmarkReadSideQuery(b *testing.B) {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		b.Skip("STRATA_TEST_POSTGRES_URL is not set")
	}
	ctx := context.Background()
	logSchema, rmSchema := randomName("strata_rsb_log_"), randomName("strata_rsb_rm_")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		rows, _ := pool.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $2 || '%'`, logSchema, rmSchema)
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, s := range names {
			pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
		}
		pool.Close()
	}()
	log, err := pgstore.Open(ctx, url, pgstore.Options{Schema: logSchema})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	db, err := projection.OpenPostgres(ctx, url, rmSchema)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r, err := NewReadSide(ctx, db, url, rmSchema, log, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- r.Run(rctx, pool, Options{Lease: pglease.Options{Schema: rmSchema, Node: "n", TTL: time.Second, Renew: 100 * time.Millisecond}})
	}()
	defer func() { cancel(); <-done }()
	p, _ := projection.ParseSpec([]byte(countsYAML))
	if err := r.Apply(ctx, p, []byte(countsYAML)); err != nil {
		b.Fatal(err)
	}
	last, err := log.Append(ctx, "s-1", store.Any, event.Event{Type: "t", Data: []byte(`{}`)})
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		st, err := r.Status(ctx, "counts", last.LastPosition)
		if err == nil && st.Version == 1 && st.Position >= last.LastPosition {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the projection never caught up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		var n int64
		reached, _, err := r.Query(ctx, last.LastPosition, `SELECT sum(n) FROM counts`, nil, func(rows *sql.Rows) error {
			for rows.Next() {
				rows.Scan(&n)
			}
			return rows.Err()
		})
		if err != nil || !reached || n != 1 {
			b.Fatalf("query: %v, %v, %d", reached, err, n)
		}
	}
}
