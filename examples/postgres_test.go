package examples_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/bank"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// postgresReadModels opens a fresh PostgreSQL schema for read models
// (dropped when the test ends), or skips without STRATA_TEST_POSTGRES_URL.
func postgresReadModels(t *testing.T) *sql.DB {
	t.Helper()
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the PostgreSQL read-model tests (set it to a PostgreSQL URL to run them)")
	}
	schema := fmt.Sprintf("strata_examples_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	ctx := context.Background()
	db, err := projection.OpenPostgres(ctx, url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.ExecContext(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		db.Close()
	})
	return db
}

// build runs p into db until it has applied head.
func build(t *testing.T, p projection.Projection, db *sql.DB, src store.Store, reg *event.Registry, head uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := projection.NewRunner(p, db, src, projection.Options{Registry: reg, BatchSize: 2000}) // batches of more orders than one upsert takes
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, head); err != nil {
		t.Fatalf("%s: %v", p.Name(), err)
	}
}

// tableText is a table's rows as text, sorted: comparable across databases.
func tableText(t *testing.T, db *sql.DB, table string, cols ...string) []string {
	t.Helper()
	q := fmt.Sprintf(`SELECT %s FROM %s`, strings.Join(cols, ", "), table)
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v.String, "/", v.Valid)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	slices.Sort(out)
	return out
}

// The examples' projections, Go and YAML, are written once for both
// databases: each builds the same rows in PostgreSQL as in SQLite, exact
// decimals included.
func TestExampleProjectionsBuildTheSameRowsInPostgreSQL(t *testing.T) {
	postgresReadModels(t) // skips without a server
	l, head, cat := orderLog(t, 300)
	ctx := context.Background()
	d := decimal.RequireFromString
	for i := range 20 {
		id := fmt.Sprintf("a%d", i)
		cmds := []bank.Command{bank.Open{Owner: fmt.Sprintf("owner %d", i), Initial: d(fmt.Sprintf("%d.10", i))}, bank.Deposit{Amount: d("12.345")}, bank.Withdraw{Amount: d("0.045")}}
		for _, c := range cmds {
			res, err := cat.Bank.Handle(ctx, id, c)
			if err != nil {
				t.Fatal(err)
			}
			head = res.Position
		}
	}
	res, err := cat.Orders.Handle(ctx, "search1", orders.Create{Customer: "Ada Lovelace"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err = cat.Orders.Handle(ctx, "search1", orders.AddItem{SKU: "engine", Quantity: 2, Price: d("100.5")}); err != nil {
		t.Fatal(err)
	}
	head = res.Position

	yamls := map[string][]byte{"order_summary": examples.OrderSummaryYAML, "account_balances": examples.AccountBalancesYAML, "lifetime_spend": examples.LifetimeSpendYAML}
	tables := map[string][]string{
		"order_summary":    {"order_id", "customer", "item_count", "subtotal", "tax_amount", "shipping_cost", "total", "status", "last_position"},
		"account_balances": {"account", "owner", "balance", "last_position"},
		"lifetime_spend":   {"customer", "orders", "spend"},
	}
	type built struct {
		name string
		p    func() projection.Projection
	}
	var all []built
	for name, y := range yamls {
		all = append(all, built{"yaml " + name, func() projection.Projection {
			p, err := projection.ParseSpec(y)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}})
	}
	all = append(all,
		built{"go order_summary", func() projection.Projection { return orders.Summary{Registry: cat.Registry} }},
		built{"go lifetime_spend", func() projection.Projection { return orders.LifetimeSpend{} }})
	for _, b := range all {
		t.Run(b.name, func(t *testing.T) {
			p := b.p()
			lite, err := projection.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer lite.Close()
			pgdb := postgresReadModels(t)
			build(t, p, lite, l, cat.Registry, head)
			build(t, p, pgdb, l, cat.Registry, head)
			cols := tables[p.Name()]
			want, got := tableText(t, lite, p.Name(), cols...), tableText(t, pgdb, p.Name(), cols...)
			if len(want) == 0 {
				t.Fatal("SQLite built nothing")
			}
			if !slices.Equal(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("row %d differs:\nPostgreSQL %s\n    SQLite %s", i, got[i], want[i])
					}
				}
				t.Fatalf("PostgreSQL has %d rows, SQLite %d", len(got), len(want))
			}
		})
	}

	// Full-text search: PostgreSQL's own, from the same spec.
	t.Run("order_search", func(t *testing.T) {
		p, err := projection.ParseSpec(examples.OrderSearchYAML)
		if err != nil {
			t.Fatal(err)
		}
		pgdb := postgresReadModels(t)
		build(t, p, pgdb, l, cat.Registry, head)
		var typ string
		if err := pgdb.QueryRow(`SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'order_search' AND column_name = 'search'`).Scan(&typ); err != nil || typ != "tsvector" {
			t.Fatalf("search column: %q, %v", typ, err)
		}
		search := func(q string) []string { return searchOrders(t, pgdb, examples.SearchOrdersPostgres, q) }
		if got := search("lovelace engine"); !slices.Equal(got, []string{"search1"}) {
			t.Fatalf("search lovelace engine = %v", got)
		}
		if got := search("c7"); len(got) == 0 || slices.Contains(got, "search1") {
			t.Fatalf("search c7 = %v", got)
		}
	})
}

// BenchmarkOrderSummaryDatabases builds order_summary from one log of
// about 130,000 order events into SQLite and into PostgreSQL (on this
// machine): the Go projection with a Runner and with a parallel Replay, the
// YAML one with a Runner.
func BenchmarkOrderSummaryDatabases(b *testing.B) {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		b.Skip("STRATA_TEST_POSTGRES_URL is not set")
	}
	l, head, cat := orderLog(b, 50_000)
	p := orders.Summary{Registry: cat.Registry}
	open := map[string]func(b *testing.B) *sql.DB{
		"sqlite": func(b *testing.B) *sql.DB {
			db, err := projection.OpenSQLite(filepath.Join(b.TempDir(), "rm.db"))
			if err != nil {
				b.Fatal(err)
			}
			return db
		},
		"postgres": func(b *testing.B) *sql.DB {
			schema := fmt.Sprintf("strata_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
			db, err := projection.OpenPostgres(context.Background(), url, schema)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { // db is closed by now
				if conn, err := pgx.Connect(context.Background(), url); err == nil {
					conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
					conn.Close(context.Background())
				}
			})
			return db
		},
	}
	yamlProj, err := projection.ParseSpec(examples.OrderSummaryYAML)
	if err != nil {
		b.Fatal(err)
	}
	for _, dbName := range []string{"sqlite", "postgres"} {
		b.Run(dbName+"/yaml-runner", func(b *testing.B) {
			benchRunner(b, yamlProj, func(b *testing.B) *sql.DB { return open[dbName](b) }, l, cat.Registry, head)
		})
		b.Run(dbName+"/runner", func(b *testing.B) {
			benchRunner(b, p, func(b *testing.B) *sql.DB { return open[dbName](b) }, l, cat.Registry, head)
		})
		b.Run(dbName+"/replay", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				db := open[dbName](b)
				b.StartTimer()
				if _, err := projection.Replay(context.Background(), p, db, l, projection.ReplayOptions{Registry: cat.Registry, Workers: 2}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				db.Close()
			}
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchRunner times a Runner of p building into a fresh database (from
// open) until it has applied head, b.N times, and reports events/s.
func benchRunner(b *testing.B, p projection.Projection, open func(*testing.B) *sql.DB, src store.Store, reg *event.Registry, head uint64) {
	for range b.N {
		b.StopTimer()
		db := open(b)
		ctx, cancel := context.WithCancel(context.Background())
		r := projection.NewRunner(p, db, src, projection.Options{Registry: reg, BatchSize: 5000})
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- r.Run(ctx) }()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
		if err := r.WaitFor(wctx, head); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		wcancel()
		cancel()
		<-done
		db.Close()
	}
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
