package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/event"
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
	logSchema, rmSchema := randomName("strata_rs_log_"), randomName("strata_rs_rm_")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []string{logSchema, rmSchema} {
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
		r, err := NewReadSide(ctx, db, log, partitions, nil)
		if err != nil {
			t.Fatal(err)
		}
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
	st, err := b.Status(ctx, "counts", last.LastPosition)
	if err != nil || st.State != projection.StateRunning || st.Position < last.LastPosition || st.LagEvents != 0 || len(st.Nodes) == 0 {
		t.Fatalf("status on b: %+v, %v", st, err)
	}
	for _, n := range st.Nodes {
		if n != "a" && n != "b" {
			t.Fatalf("status names node %q", n)
		}
	}
	var parts int
	pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{rmSchema}.Sanitize()+`.strata_checkpoints WHERE projection LIKE 'counts#%/3'`).Scan(&parts)
	if parts != 3 {
		t.Fatalf("%d checkpoints of counts#k/3: the projection was not cut as applied", parts)
	}

	changed := []byte(countsYAML + "  u: \"SELECT 1\"\n")
	p2, err := projection.ParseSpec(changed)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, p2, changed); !errors.Is(err, ErrChanged) {
		t.Fatalf("a changed definition: %v", err)
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
