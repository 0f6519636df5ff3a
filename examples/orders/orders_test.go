package orders_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/aggregate/aggregatetest"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/store"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// A log holding OrderCreated v1, v2 and v3 events is read as v3: missing
// tax and shipping are 0.
func TestOldOrderCreatedVersionsReadAsV3(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg := event.NewRegistry()
	if err := orders.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	item := event.Event{Type: "order.item_added", Schema: 1, Data: []byte(`{"sku":"A1","quantity":2,"price":"10.00"}`)}
	written := map[string][]event.Event{
		"order-v1": {{Type: "order.created", Schema: 1, Data: []byte(`{"customer":"c1"}`)}, item},
		"order-v2": {{Type: "order.created", Schema: 2, Data: []byte(`{"customer":"c2","tax_amount":"1.90"}`)}, item},
		"order-v3": {{Type: "order.created", Schema: 3, Data: []byte(`{"customer":"c3","tax_amount":"1.90","shipping_cost":"4.95"}`)}, item},
	}
	for stream, evs := range written {
		if _, err := l.Append(ctx, stream, store.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := aggregate.NewRepository(l, reg, orders.Decider, aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ tax, shipping, total string }{
		"v1": {"0", "0", "20"},
		"v2": {"1.90", "0", "21.90"},
		"v3": {"1.90", "4.95", "26.85"},
	}
	for id, w := range want {
		o, _, err := repo.Load(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !o.TaxAmount.Equal(d(w.tax)) || !o.ShippingCost.Equal(d(w.shipping)) || !o.Total.Equal(d(w.total)) {
			t.Errorf("order %s: tax %s shipping %s total %s; want %s %s %s", id, o.TaxAmount, o.ShippingCost, o.Total, w.tax, w.shipping, w.total)
		}
	}
	// Every reader sees v3: decoding the v1 event gives the v3 struct.
	for rec, err := range l.ReadStream(ctx, "order-v1", store.ReadStreamOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		v, err := reg.Decode(&rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		if oc := v.(orders.OrderCreated); oc.Customer != "c1" || !oc.TaxAmount.IsZero() || !oc.ShippingCost.IsZero() {
			t.Fatalf("v1 decoded as %+v", oc)
		}
	}
}

func TestDecide(t *testing.T) {
	created := orders.OrderCreated{Customer: "c", TaxAmount: decimal.Zero, ShippingCost: decimal.Zero}
	o := func() *aggregatetest.Scenario[orders.Order, orders.Command, orders.Event] {
		return aggregatetest.For(orders.Decider)
	}
	o().When(orders.Create{Customer: "c"}).Then(t, created)
	o().Given(created).When(orders.Create{Customer: "c"}).ThenError(t, orders.ErrExists)
	o().When(orders.Ship{}).ThenError(t, orders.ErrNoOrder)
	o().Given(created).When(orders.Ship{}).ThenError(t, orders.ErrEmpty)
	o().Given(created).When(orders.AddItem{SKU: "A", Quantity: 0, Price: d("1")}).ThenError(t, orders.ErrBadItem)
	o().Given(created, orders.ItemAdded{SKU: "A", Quantity: 1, Price: d("1")}).When(orders.Ship{}).Then(t, orders.OrderShipped{})
	o().Given(created, orders.ItemAdded{SKU: "A", Quantity: 1, Price: d("1")}, orders.OrderShipped{}).
		When(orders.AddItem{SKU: "B", Quantity: 1, Price: d("1")}).ThenError(t, orders.ErrShipped)
}

func TestWithDefaultUpcaster(t *testing.T) {
	up := orders.WithDefaultForTest("tax_amount")
	cases := map[string]string{
		`{"customer":"c1"}`:                     `{"customer":"c1","tax_amount":"0"}`,
		`{}`:                                    `{"tax_amount":"0"}`,
		` { "customer" : "c1" } `:               `{ "customer" : "c1" ,"tax_amount":"0"}`,
		`{"note":"has \"tax_amount\" in it"}`:   `{"note":"has \"tax_amount\" in it","tax_amount":"0"}`,
		`{"customer":"c1","tax_amount":"1.90"}`: `{"customer":"c1","tax_amount":"1.90"}`,
		`{"note":"}","customer":"x"}`:           `{"note":"}","customer":"x","tax_amount":"0"}`,
	}
	for in, want := range cases {
		got, err := up([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("%s → %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`not json`, `"}"`, `[1]`} {
		if _, err := up([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// A malformed object is not checked, but stays malformed, so every
	// reader still rejects it.
	if got, err := up([]byte(`{"a":}`)); err == nil && json.Valid(got) {
		t.Errorf(`{"a":} became valid: %s`, got)
	}
}

// The upcaster's shortcut relies on this: adding the member to malformed
// JSON never makes it well-formed.
func TestWithDefaultKeepsMalformedDataMalformed(t *testing.T) {
	up := orders.WithDefaultForTest("tax_amount")
	tokens := []string{`"`, `\`, `\"`, `{`, `}`, `[`, `]`, `:`, `,`, `"a"`, `1`, `true`, ` `, `"tax_amount"`, `"x`, `e`, `-`}
	rapid.Check(t, func(t *rapid.T) {
		parts := rapid.SliceOfN(rapid.SampledFrom(tokens), 0, 12).Draw(t, "inner")
		in := []byte("{" + strings.Join(parts, "") + "}")
		out, err := up(in)
		if err != nil {
			return
		}
		if !json.Valid(in) && json.Valid(out) {
			t.Fatalf("malformed %s became well-formed %s", in, out)
		}
		if json.Valid(in) {
			var m map[string]any
			if json.Unmarshal(out, &m) != nil || m["tax_amount"] == nil {
				t.Fatalf("%s → %s", in, out)
			}
		}
	})
}
