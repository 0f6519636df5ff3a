package examples_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
)

func TestOrderSearchByCustomerAndProduct(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cat, _ := examples.New(l, nil)
	ctx := context.Background()
	d := decimal.RequireFromString
	var last uint64
	for _, c := range []struct {
		id  string
		cmd orders.Command
	}{
		{"o1", orders.Create{Customer: "Ada Lovelace"}},
		{"o1", orders.AddItem{SKU: "engine", Quantity: 1, Price: d("100")}},
		{"o2", orders.Create{Customer: "Charles Babbage"}},
		{"o2", orders.AddItem{SKU: "engine", Quantity: 2, Price: d("90")}},
		{"o2", orders.AddItem{SKU: "punchcards", Quantity: 500, Price: d("0.01")}},
		{"o3", orders.Create{Customer: "Ada Byron"}},
	} {
		res, err := cat.Orders.Handle(ctx, c.id, c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	db, err := projection.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := projection.ParseSpec(examples.OrderSearchYAML)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := projection.NewRunner(p, db, l, projection.Options{Registry: cat.Registry})
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, last); err != nil {
		t.Fatal(err)
	}
	search := func(q string) []string { return searchOrders(t, db, examples.SearchOrders, q) }
	for q, want := range map[string][]string{
		"ada":                 {"o1", "o3"},
		"engine":              {"o1", "o2"},
		"punchcards":          {"o2"},
		"customer:babbage":    {"o2"},
		"ada engine":          {"o1"},
		"lovelace OR babbage": {"o1", "o2"},
		"punch*":              {"o2"},
		"products:ada":        nil,
	} {
		if got := search(q); !reflect.DeepEqual(got, want) {
			t.Errorf("search %q = %v, want %v", q, got, want)
		}
	}
}

// searchOrders runs an order search query (SQLite's or PostgreSQL's) and
// returns the order ids it finds.
func searchOrders(t *testing.T, db *sql.DB, query, q string) []string {
	t.Helper()
	rows, err := db.Query(query, q)
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id, customer, products string
		rows.Scan(&id, &customer, &products)
		ids = append(ids, id)
	}
	return ids
}
