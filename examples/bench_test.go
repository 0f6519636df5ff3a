package examples_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
)

// BenchmarkOrderSummary builds order_summary from an existing log of about
// 1,000,000 order events (380,000 orders), with the Go and the YAML
// projection.
func BenchmarkOrderSummary(b *testing.B) {
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	head := fillOrders(b, l, 380_000)
	cat, _ := examples.New(l, nil)
	yamlProj, err := projection.ParseSpec(examples.OrderSummaryYAML)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    projection.Projection
	}{{"go", orders.Summary{Registry: cat.Registry}}, {"yaml", yamlProj}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				db, err := projection.OpenSQLite(filepath.Join(b.TempDir(), "rm.db"))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				r := projection.NewRunner(tc.p, db, l, projection.Options{Registry: cat.Registry, BatchSize: 5000})
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
		})
	}
}
