package examples_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

func spendTable(t *testing.T, db *sql.DB) [][3]string {
	t.Helper()
	rows, err := db.Query(`SELECT customer, orders, spend FROM lifetime_spend ORDER BY customer`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var r [3]string
		if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// spendModel computes lifetime_spend straight from the log: every
// OrderCreated decoded (upcast to v3) and summed with shopspring/decimal.
func spendModel(t *testing.T, l store.Store, reg *event.Registry) [][3]string {
	t.Helper()
	type tot struct {
		n int
		d decimal.Decimal
	}
	m := map[string]*tot{}
	for rec, err := range l.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type != "order.created" {
			continue
		}
		v, err := reg.Decode(&rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		c := v.(orders.OrderCreated)
		if m[c.Customer] == nil {
			m[c.Customer] = &tot{}
		}
		m[c.Customer].n++
		m[c.Customer].d = m[c.Customer].d.Add(c.Amount).Add(c.TaxAmount).Add(c.ShippingCost)
	}
	db, err := projection.OpenSQLite(filepath.Join(t.TempDir(), "model.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Through SQLite too, so that numbers print as the read model prints them.
	if _, err := db.Exec(`CREATE TABLE lifetime_spend (customer TEXT PRIMARY KEY, orders INTEGER, spend TEXT)`); err != nil {
		t.Fatal(err)
	}
	for c, v := range m {
		if _, err := db.Exec(`INSERT INTO lifetime_spend VALUES (?, ?, dec_add(?, 0))`, c, v.n, v.d.String()); err != nil {
			t.Fatal(err)
		}
	}
	return spendTable(t, db)
}

// lifetime_spend in YAML, in Go, and replayed in parallel partitions by
// stream (its rows are sums, so partitions may touch one customer in any
// order) all equal a model computed straight from the log.
func TestLifetimeSpendYAMLGoAndReplayAgree(t *testing.T) {
	l, head, cat := orderLog(t, 400)
	want := spendModel(t, l, cat.Registry)
	if len(want) != 50 {
		t.Fatalf("model has %d customers", len(want))
	}
	yamlProj, err := projection.ParseSpec(examples.LifetimeSpendYAML)
	if err != nil {
		t.Fatal(err)
	}
	goProj := orders.LifetimeSpend{}
	for _, p := range []projection.Projection{yamlProj, goProj} {
		if got := spendTable(t, buildSummary(t, l, p, cat.Registry, head)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%T built\n%v\nwant\n%v", p, got, want)
		}
		for _, workers := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%T/replay/%d", p, workers), func(t *testing.T) {
				db, err := projection.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				pos, err := projection.Replay(context.Background(), p, db, l, projection.ReplayOptions{Workers: workers, FlushEvery: 101, Registry: cat.Registry})
				if err != nil || pos != head {
					t.Fatalf("Replay: %d, %v", pos, err)
				}
				if got := spendTable(t, db); !reflect.DeepEqual(got, want) {
					t.Fatalf("replayed\n%v\nwant\n%v", got, want)
				}
			})
		}
	}
}
