package orders

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/jsonscan"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/projection"
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
type LifetimeSpend struct{}

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

// EventTypes implements projection.Selective.
func (LifetimeSpend) EventTypes() []string { return []string{"order.created"} }

// spendDelta is what one OrderCreated adds to its customer's row.
type spendDelta struct {
	customer string
	spend    num.Dec
}

var spendFields = []string{"customer", "amount", "tax_amount", "shipping_cost"}

// Prepare reads the four fields it needs from OrderCreated (already upcast
// to v3) on the runner's reading goroutine, or on a replay's workers. It
// scans the JSON for them instead of decoding the whole event through the
// registry: a replay of hundreds of millions of events spends most of its
// time here. Decoding would accept the same events (a test checks the two
// agree); the amounts are added exactly (num.Dec).
func (s LifetimeSpend) Prepare(rec *event.Record) (any, error) {
	if rec.Type != "order.created" {
		return nil, nil
	}
	customer, spend, err := scanCreated(rec)
	if err != nil {
		return nil, err
	}
	c, err := jsonString(customer)
	if err != nil {
		return nil, fmt.Errorf("order.created at %d: customer: %w", rec.Position, err)
	}
	return spendDelta{customer: c, spend: spend}, nil
}

// scanCreated returns an OrderCreated's customer (as raw JSON) and what it
// cost, without allocating.
func scanCreated(rec *event.Record) (customer []byte, spend num.Dec, err error) {
	var vals [4][]byte
	if err := jsonscan.Fields(rec.Data, spendFields, vals[:]); err != nil {
		return nil, spend, fmt.Errorf("order.created at %d: %w", rec.Position, err)
	}
	for i, v := range vals[1:] {
		if spend, err = addAmount(spend, v); err != nil {
			return nil, spend, fmt.Errorf("order.created at %d: %s: %w", rec.Position, spendFields[1+i], err)
		}
	}
	return vals[0], spend, nil
}

// jsonString decodes a JSON string; plain ones (no escapes) without
// encoding/json.
func jsonString(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return "", fmt.Errorf("%s is not a JSON string", raw)
	}
	return str, nil
}

// Apply implements projection.Projection.
func (s LifetimeSpend) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	return projection.ApplyPreparing(ctx, tx, s, batch)
}

// ApplyPrepared implements projection.PreparingProjection: it sums the
// batch per customer, then adds each sum to its row with one upsert.
func (s LifetimeSpend) ApplyPrepared(ctx context.Context, tx *sql.Tx, _ []event.Record, prepared []any) error {
	f := s.NewFold().(*spendFold)
	for _, p := range prepared {
		if d, ok := p.(spendDelta); ok {
			f.add(d)
		}
	}
	return f.Write(ctx, tx)
}

// NewFold implements projection.Folding: a replay folds millions of events
// into per-customer sums and writes each customer's row once.
func (LifetimeSpend) NewFold() projection.Fold { return &spendFold{totals: map[string]*spendTotal{}} }

type spendTotal struct {
	orders int64
	spend  num.Dec
}

type spendFold struct {
	s      LifetimeSpend
	totals map[string]*spendTotal
	order  []string // customers in the order first seen, for stable writes
}

func (f *spendFold) Add(rec *event.Record) error {
	if rec.Type != "order.created" {
		return nil
	}
	raw, spend, err := scanCreated(rec)
	if err != nil {
		return err
	}
	// Look the customer up by its JSON text without making a string
	// (the common case: no escapes); only a new customer allocates one.
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		if t := f.totals[string(raw[1:len(raw)-1])]; t != nil {
			t.orders++
			t.spend = t.spend.Add(spend)
			return nil
		}
	}
	c, err := jsonString(raw)
	if err != nil {
		return fmt.Errorf("order.created at %d: customer: %w", rec.Position, err)
	}
	f.add(spendDelta{customer: c, spend: spend})
	return nil
}

func (f *spendFold) add(d spendDelta) {
	t := f.totals[d.customer]
	if t == nil {
		t = &spendTotal{}
		f.totals[d.customer] = t
		f.order = append(f.order, d.customer)
	}
	t.orders++
	t.spend = t.spend.Add(d.spend)
}

// Write adds each customer's sums to its row, one upsert per customer.
func (f *spendFold) Write(ctx context.Context, tx *sql.Tx) error {
	defer func() { clear(f.totals); f.order = f.order[:0] }()
	if len(f.order) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO lifetime_spend (customer, orders, spend) VALUES ($1, $2, $3)
ON CONFLICT(customer) DO UPDATE SET orders = lifetime_spend.orders + excluded.orders, spend = dec_add(lifetime_spend.spend, excluded.spend)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range f.order {
		t := f.totals[c]
		if _, err := stmt.ExecContext(ctx, c, t.orders, t.spend.String()); err != nil {
			return err
		}
	}
	return nil
}
