package orders

import (
	"context"
	"database/sql"
	"errors"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/event"
)

// LifetimeSpend is the Go version of the lifetime_spend read model (the
// YAML one is examples/lifetime_spend.yaml): per customer, the number of
// orders and what they cost at checkout (amount + tax + shipping of
// OrderCreated, every schema version upcast to v3).
//
// Its rows are sums, so it adds each batch's totals to them rather than
// overwriting them: batches of different streams may then be applied in any
// order, which is what lets a parallel replay partition its events by
// stream although one customer's orders are spread over many streams.
type LifetimeSpend struct {
	Registry *event.Registry // decodes the (already upcast) events
}

// Name implements projection.Projection.
func (LifetimeSpend) Name() string { return "lifetime_spend" }

// Setup implements projection.Projection.
func (LifetimeSpend) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS lifetime_spend (
      customer TEXT PRIMARY KEY,
      orders   INTEGER NOT NULL,
      spend    TEXT NOT NULL
    )`)
	return err
}

// spendDelta is what one OrderCreated adds to its customer's row.
type spendDelta struct {
	customer string
	spend    decimal.Decimal
}

// Prepare decodes OrderCreated events (nil for all others) on the runner's
// reading goroutine.
func (s LifetimeSpend) Prepare(rec *event.Record) (any, error) {
	if rec.Type != "order.created" {
		return nil, nil
	}
	v, err := s.Registry.Decode(&rec.Event)
	if errors.Is(err, event.ErrUnknownType) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c := v.(OrderCreated)
	return spendDelta{c.Customer, c.Amount.Add(c.TaxAmount).Add(c.ShippingCost)}, nil
}

// Apply implements projection.Projection.
func (s LifetimeSpend) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	prepared := make([]any, len(batch))
	for i := range batch {
		var err error
		if prepared[i], err = s.Prepare(&batch[i]); err != nil {
			return err
		}
	}
	return s.ApplyPrepared(ctx, tx, batch, prepared)
}

type spendTotal struct {
	orders int64
	spend  decimal.Decimal
}

// ApplyPrepared implements projection.PreparingProjection: it sums the
// batch per customer, then adds each sum to its row with one upsert.
func (LifetimeSpend) ApplyPrepared(ctx context.Context, tx *sql.Tx, _ []event.Record, prepared []any) error {
	totals := map[string]*spendTotal{}
	var order []string
	for _, p := range prepared {
		d, ok := p.(spendDelta)
		if !ok {
			continue
		}
		t := totals[d.customer]
		if t == nil {
			t = &spendTotal{}
			totals[d.customer] = t
			order = append(order, d.customer)
		}
		t.orders++
		t.spend = t.spend.Add(d.spend)
	}
	if len(order) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO lifetime_spend (customer, orders, spend) VALUES (?, ?, ?)
ON CONFLICT(customer) DO UPDATE SET orders = orders + excluded.orders, spend = dec_add(spend, excluded.spend)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range order {
		t := totals[c]
		if _, err := stmt.ExecContext(ctx, c, t.orders, t.spend.String()); err != nil {
			return err
		}
	}
	return nil
}
