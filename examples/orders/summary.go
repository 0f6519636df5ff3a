package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/projection"
)

// Summary is the Go version of the order_summary read model (the YAML one is
// examples/order_summary.yaml; a test checks they build identical tables).
// It coalesces a batch's events per order in memory and writes each touched
// row once, which is what lets it outrun one statement per event.
type Summary struct {
	Registry *event.Registry // decodes the (already upcast) events

	manyRows bool // one upsert for many rows (PostgreSQL)
}

// For implements projection.Portable. In PostgreSQL every statement is a
// round trip, so rows go many to an upsert; SQLite, in the process, runs
// one prepared upsert per row faster (it numbers a statement's named
// parameters by a linear search, so a statement with thousands of them
// costs more than the round trips it saves).
func (s Summary) For(database string) projection.Projection {
	s.manyRows = database == projection.DatabasePostgres
	return s
}

// Name implements projection.Projection.
func (Summary) Name() string { return "order_summary" }

// Setup implements projection.Projection.
func (Summary) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS order_summary (
      order_id      TEXT PRIMARY KEY,
      customer      TEXT NOT NULL,
      item_count    INTEGER NOT NULL,
      subtotal      TEXT NOT NULL,
      tax_amount    TEXT NOT NULL,
      shipping_cost TEXT NOT NULL,
      total         TEXT NOT NULL,
      status        TEXT NOT NULL,
      last_position BIGINT NOT NULL
    )`)
	return err
}

// EventTypes implements projection.Selective.
func (Summary) EventTypes() []string {
	return []string{"order.created", "order.item_added", "order.shipped"}
}

type summaryRow struct {
	customer                string
	items                   int64
	subtotal, tax, shipping decimal.Decimal
	status                  string
	position                uint64
}

// Prepare decodes an order event (nil for others); the runner calls it
// ahead of Apply, on another goroutine.
func (s Summary) Prepare(rec *event.Record) (any, error) {
	if !strings.HasPrefix(rec.Stream, "order-") {
		return nil, nil
	}
	v, err := s.Registry.Decode(&rec.Event)
	if errors.Is(err, event.ErrUnknownType) {
		return nil, nil
	}
	return v, err
}

// upsertChunk is how many rows one upsert writes at most (PostgreSQL): 9
// parameters each, well under its limit.
const (
	upsertChunk    = 256
	summaryColumns = 9
)

// summaryUpserts caches the upsert statement of each row count.
var summaryUpserts sync.Map // int → string

// summaryUpsert returns the upsert of n rows, placeholders numbered for
// both databases.
func summaryUpsert(n int) string {
	if q, ok := summaryUpserts.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO order_summary (order_id, customer, item_count, subtotal, tax_amount, shipping_cost, total, status, last_position) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range summaryColumns {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", i*summaryColumns+c+1)
		}
		b.WriteByte(')')
	}
	b.WriteString(`
ON CONFLICT(order_id) DO UPDATE SET customer = excluded.customer, item_count = excluded.item_count, subtotal = excluded.subtotal,
  tax_amount = excluded.tax_amount, shipping_cost = excluded.shipping_cost, total = excluded.total, status = excluded.status,
  last_position = excluded.last_position`)
	q, _ := summaryUpserts.LoadOrStore(n, b.String())
	return q.(string)
}

// Apply implements projection.Projection.
func (s Summary) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	return projection.ApplyPreparing(ctx, tx, s, batch)
}

// ApplyPrepared implements projection.PreparingProjection.
func (s Summary) ApplyPrepared(ctx context.Context, tx *sql.Tx, batch []event.Record, prepared []any) error {
	rows := map[string]*summaryRow{}
	var order []string
	load := func(id string) (*summaryRow, error) {
		if r, ok := rows[id]; ok {
			return r, nil
		}
		var r summaryRow
		var sub, tax, ship string
		err := tx.QueryRowContext(ctx, `SELECT customer, item_count, subtotal, tax_amount, shipping_cost, status, last_position FROM order_summary WHERE order_id = $1`, id).
			Scan(&r.customer, &r.items, &sub, &tax, &ship, &r.status, &r.position)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if r.subtotal, err = decimal.NewFromString(sub); err == nil {
			if r.tax, err = decimal.NewFromString(tax); err == nil {
				r.shipping, err = decimal.NewFromString(ship)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("order_summary %s: %w", id, err)
		}
		rows[id] = &r
		order = append(order, id)
		return &r, nil
	}
	for i := range batch {
		rec := &batch[i]
		if prepared[i] == nil {
			continue // not an order event
		}
		id := rec.Stream[len("order-"):]
		switch e := prepared[i].(type) {
		case OrderCreated:
			if _, ok := rows[id]; !ok {
				order = append(order, id)
			}
			rows[id] = &summaryRow{customer: e.Customer, subtotal: e.Amount, tax: e.TaxAmount, shipping: e.ShippingCost, status: "created", position: rec.Position}
		case ItemAdded:
			r, err := load(id)
			if err != nil || r == nil {
				continue // like the SQL UPDATE: no row, nothing to update
			}
			r.items += e.Quantity
			r.subtotal = r.subtotal.Add(e.Price.Mul(decimal.NewFromInt(e.Quantity)))
			r.position = rec.Position
		case OrderShipped:
			r, err := load(id)
			if err != nil || r == nil {
				continue
			}
			r.status, r.position = "shipped", rec.Position
		}
	}
	if !s.manyRows {
		stmt, err := tx.PrepareContext(ctx, summaryUpsert(1))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, id := range order {
			r := rows[id]
			total := r.subtotal.Add(r.tax).Add(r.shipping)
			if _, err := stmt.ExecContext(ctx, id, r.customer, r.items, r.subtotal.String(), r.tax.String(), r.shipping.String(), total.String(), r.status, int64(r.position)); err != nil {
				return err
			}
		}
		return nil
	}
	args := make([]any, 0, upsertChunk*summaryColumns)
	for len(order) > 0 {
		n := min(len(order), upsertChunk)
		args = args[:0]
		for _, id := range order[:n] {
			r := rows[id]
			total := r.subtotal.Add(r.tax).Add(r.shipping)
			args = append(args, id, r.customer, r.items, r.subtotal.String(), r.tax.String(), r.shipping.String(), total.String(), r.status, int64(r.position))
		}
		if _, err := tx.ExecContext(ctx, summaryUpsert(n), args...); err != nil {
			return err
		}
		order = order[n:]
	}
	return nil
}
