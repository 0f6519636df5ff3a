package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratadb/strata/store"
)

// TestReadPlansNeedNoStatistics checks the plans of the read statements
// in the form that hurt: a node prepares its statements on a young, small
// table; without an ANALYZE nothing ever makes PostgreSQL plan them again
// (autovacuum is off on some servers, this project's CI machine among
// them); after a few runs a prepared statement runs a generic plan. By
// then the table is large. No plan may read the event table whole: a join
// the planner was free to turn into a hash join did here, and read the
// log 150 times slower (docs/benchmarks.md).
func TestReadPlansNeedNoStatistics(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := openStore(t, url, schema)
	if _, err := s.Append(ctx, "s-0", store.Any, testEvents(1, "e")...); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name, query, args string
	}{
		{"logPage", s.q.logPage, `(1000, 3048)`},
		{"logPageFiltered", s.q.logPageFiltered, `(1000, 17384, ARRAY['e'], 's-1', 2048)`},
		{"positions", s.q.positions, `(ARRAY['s-1', 's-2'], ARRAY[3, 4]::bigint[])`},
		{"streamFwd", s.q.streamFwd, `('s-1', 1, 2048)`},
		{"streamBack", s.q.streamBack, `('s-1', 100, 2048)`},
	}
	for _, c := range checks {
		// Planned now, on the young table.
		if _, err := conn.Exec(ctx, `PREPARE `+c.name+` AS `+c.query); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `EXPLAIN EXECUTE `+c.name+c.args); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%20), store.Any, testEvents(20, "e")...); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			rows, err := conn.Query(ctx, `EXPLAIN EXECUTE `+c.name+c.args)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			if strings.Contains(plan, "Seq Scan on strata_events") {
				t.Fatalf("the plan reads the whole event table:\n%s", plan)
			}
		})
	}
}
