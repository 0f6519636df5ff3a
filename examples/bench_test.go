package examples_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
)

// BenchmarkOrderSummary builds order_summary from an existing log of about
// 1,000,000 order events (380,000 orders), with the Go and the YAML
// projection.
func BenchmarkOrderSummary(b *testing.B) {
	l, head, cat := orderLog(b, 380_000)
	yamlProj, err := projection.ParseSpec(examples.OrderSummaryYAML)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    projection.Projection
	}{{"go", orders.Summary{Registry: cat.Registry}}, {"yaml", yamlProj}} {
		b.Run(tc.name, func(b *testing.B) {
			benchRunner(b, tc.p, func(b *testing.B) *sql.DB {
				db, err := projection.OpenSQLite(filepath.Join(b.TempDir(), "rm.db"))
				if err != nil {
					b.Fatal(err)
				}
				return db
			}, l, cat.Registry, head)
		})
	}
	// The ceiling the targets are set against: one prepared upsert
	// per event, of ready-made rows, nothing decoded. This machine's speed
	// varies from day to day, so the projections are judged by their ratio
	// to this figure from the same run.
	b.Run("upsert-per-event", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			db, err := projection.OpenSQLite(filepath.Join(b.TempDir(), "rm.db"))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := upsertPerEvent(ctx, db, head, 380_000, b.StartTimer); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			db.Close()
		}
		b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "upserts/s")
	})
}

func upsertPerEvent(ctx context.Context, db *sql.DB, n uint64, keys int, start func()) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE order_summary (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, item_count INTEGER NOT NULL,
  subtotal TEXT NOT NULL, tax_amount TEXT NOT NULL, shipping_cost TEXT NOT NULL, total TEXT NOT NULL, status TEXT NOT NULL, last_position INTEGER NOT NULL)`); err != nil {
		return err
	}
	ids := make([]string, keys)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%d", i)
	}
	start()
	for from := uint64(0); from < n; from += 5000 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO order_summary (order_id, customer, item_count, subtotal, tax_amount, shipping_cost, total, status, last_position)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(order_id) DO UPDATE SET customer = excluded.customer, item_count = excluded.item_count, subtotal = excluded.subtotal,
  tax_amount = excluded.tax_amount, shipping_cost = excluded.shipping_cost, total = excluded.total, status = excluded.status,
  last_position = excluded.last_position`)
		if err != nil {
			return err
		}
		for p := from; p < min(from+5000, n); p++ {
			if _, err := stmt.ExecContext(ctx, ids[p*7%uint64(keys)], "c1", 2, "12.50", "1.90", "4.95", "19.35", "created", int64(p)); err != nil {
				return err
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLifetimeSpendReplay rebuilds lifetime_spend from an existing log
// of about 1,000,000 order events with projection.Replay, per worker count.
func BenchmarkLifetimeSpendReplay(b *testing.B) {
	l, head, cat := orderLog(b, 380_000)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("go/workers=%d", workers), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				db, err := projection.OpenSQLite(filepath.Join(b.TempDir(), "rm.db"))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := projection.Replay(context.Background(), orders.LifetimeSpend{}, db, l,
					projection.ReplayOptions{Workers: workers, Registry: cat.Registry}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				db.Close()
			}
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
