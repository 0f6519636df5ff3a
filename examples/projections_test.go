package examples_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// fillOrders writes n orders with a mix of OrderCreated v1, v2 and v3
// events, items and shipments, and returns the head.
func fillOrders(t testing.TB, l *eventlog.Log, n int) uint64 {
	ctx := context.Background()
	var head uint64
	for i := range n {
		stream := fmt.Sprintf("order-o%d", i)
		var created event.Event
		switch i % 3 {
		case 0:
			created = event.Event{Type: "order.created", Schema: 1, Data: []byte(fmt.Sprintf(`{"customer":"c%d"}`, i%50))} // no amount: 0
			if i%2 == 0 {
				created.Data = []byte(fmt.Sprintf(`{"customer":"c%d","amount":"%d.25"}`, i%50, i%90))
			}
		case 1:
			created = event.Event{Type: "order.created", Schema: 2, Data: []byte(fmt.Sprintf(`{"customer":"c%d","tax_amount":"1.90"}`, i%50))}
		default:
			created = event.Event{Type: "order.created", Schema: 3, Data: []byte(fmt.Sprintf(`{"customer":"c%d","amount":"%d.5","tax_amount":"0.10","shipping_cost":"4.95"}`, i%50, i%70))}
		}
		evs := []event.Event{created}
		for j := range i % 4 {
			evs = append(evs, event.Event{Type: "order.item_added", Data: []byte(fmt.Sprintf(`{"sku":"s%d","quantity":%d,"price":"%d.%02d"}`, j, j+1, j*3, (i*7)%100))})
		}
		if i%5 == 0 && i%4 != 0 {
			evs = append(evs, event.Event{Type: "order.shipped", Data: []byte(`{}`)})
		}
		res, err := l.Append(ctx, stream, store.NoStream, evs...)
		if err != nil {
			t.Fatal(err)
		}
		head = res.LastPosition
	}
	return head
}

// orderLog is a fresh log (durability none, closed when the test ends)
// holding fillOrders(n), its head, and the examples' catalog over it.
func orderLog(t testing.TB, n int) (*eventlog.Log, uint64, *examples.Catalog) {
	t.Helper()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	head := fillOrders(t, l, n)
	cat, err := examples.New(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, head, cat
}

func buildSummary(t *testing.T, l *eventlog.Log, p projection.Projection, reg *event.Registry, head uint64) *sql.DB {
	t.Helper()
	db, err := projection.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	r := projection.NewRunner(p, db, l, projection.Options{Registry: reg, BatchSize: 97})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, head); err != nil {
		t.Fatalf("%s: %v (%+v)", p.Name(), err, r.Status())
	}
	cancel()
	<-done
	return db
}

func table(t *testing.T, db *sql.DB) [][]string {
	t.Helper()
	rows, err := db.Query(`SELECT order_id, customer, item_count, subtotal, tax_amount, shipping_cost, total, status, last_position FROM order_summary ORDER BY order_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		row := make([]string, 9)
		ptrs := make([]any, 9)
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	return out
}

// The declarative (YAML) and Go versions of order_summary build identical
// tables from the same log, and v1/v2 orders read as v3 (tax and shipping 0).
func TestOrderSummaryYAMLAndGoAgree(t *testing.T) {
	l, head, cat := orderLog(t, 300)
	yamlProj, err := projection.ParseSpec(examples.OrderSummaryYAML)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML := table(t, buildSummary(t, l, yamlProj, cat.Registry, head))
	fromGo := table(t, buildSummary(t, l, orders.Summary{Registry: cat.Registry}, cat.Registry, head))
	if len(fromGo) != 300 {
		t.Fatalf("%d rows", len(fromGo))
	}
	if !reflect.DeepEqual(fromYAML, fromGo) {
		for i := range fromGo {
			if !reflect.DeepEqual(fromYAML[i], fromGo[i]) {
				t.Fatalf("first difference at row %d:\n yaml %v\n go   %v", i, fromYAML[i], fromGo[i])
			}
		}
	}
	// Order o3 (v1, three items) and o5 (v3, one item, shipped): check by hand.
	byID := map[string][]string{}
	for _, r := range fromGo {
		byID[r[0]] = r
	}
	o3 := byID["o3"] // v1 without an amount: no tax, no shipping; items 1×0.21, 2×3.21, 3×6.21
	wantSub := decimal.RequireFromString("0.21").Add(decimal.RequireFromString("6.42")).Add(decimal.RequireFromString("18.63"))
	if o3[2] != "6" || o3[3] != wantSub.String() || o3[4] != "0" || o3[5] != "0" || o3[6] != wantSub.String() || o3[7] != "created" {
		t.Fatalf("o3 = %v", o3)
	}
	if o5 := byID["o5"]; o5[7] != "shipped" || o5[3] != "5.85" || o5[6] != "10.9" { // v3: amount 5.5 + item 0.35 + 0.10 tax + 4.95 shipping
		t.Fatalf("o5 = %v", o5)
	}
}
