// Package orders is the order example, and the example of schema evolution:
// OrderCreated went through three versions (v1 had no tax, v2 added
// tax_amount, v3 shipping_cost). Old events are never rewritten; upcasters
// bring them to v3 on read, so the code only ever sees v3.
package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
)

// Domain errors.
var (
	ErrExists     = errors.New("orders: order already exists")
	ErrNoOrder    = errors.New("orders: no such order")
	ErrShipped    = errors.New("orders: order already shipped")
	ErrEmpty      = errors.New("orders: cannot ship an order without items")
	ErrBadItem    = errors.New("orders: item needs a sku, a positive quantity and a price of at least 0")
	ErrBadAmounts = errors.New("orders: amount, tax and shipping cannot be negative")
)

// Events.
type (
	Event interface{ isOrderEvent() }

	// OrderCreated is version 3 of the event. Amount, the goods' price at
	// checkout, was there from v1; items added later come on top of it.
	OrderCreated struct {
		Customer     string          `json:"customer"`
		Amount       decimal.Decimal `json:"amount"`
		TaxAmount    decimal.Decimal `json:"tax_amount"`
		ShippingCost decimal.Decimal `json:"shipping_cost"`
	}
	ItemAdded struct {
		SKU      string          `json:"sku"`
		Quantity int64           `json:"quantity"`
		Price    decimal.Decimal `json:"price"`
	}
	OrderShipped struct{}
)

func (OrderCreated) isOrderEvent() {}
func (ItemAdded) isOrderEvent()    {}
func (OrderShipped) isOrderEvent() {}

// Commands.
type (
	Command interface{ isOrderCommand() }

	Create struct {
		Customer                       string
		Amount, TaxAmount, ShippingCst decimal.Decimal
	}
	AddItem struct {
		SKU      string
		Quantity int64
		Price    decimal.Decimal
	}
	Ship struct{}
)

func (Create) isOrderCommand()  {}
func (AddItem) isOrderCommand() {}
func (Ship) isOrderCommand()    {}

// Order is the state.
type Order struct {
	Exists       bool            `json:"exists"`
	Customer     string          `json:"customer,omitempty"`
	Items        int64           `json:"item_count"`
	Subtotal     decimal.Decimal `json:"subtotal"`
	TaxAmount    decimal.Decimal `json:"tax_amount"`
	ShippingCost decimal.Decimal `json:"shipping_cost"`
	Total        decimal.Decimal `json:"total"`
	Shipped      bool            `json:"shipped"`
}

// Decider folds and decides orders: streams "order-<id>".
var Decider = aggregate.Decider[Order, Command, Event]{
	Category: "order",
	Version:  2, // 2: the subtotal starts at OrderCreated's amount
	Evolve:   evolve,
	Decide:   decide,
}

func evolve(o Order, e Event) Order {
	switch e := e.(type) {
	case OrderCreated:
		o.Exists, o.Customer, o.TaxAmount, o.ShippingCost = true, e.Customer, e.TaxAmount, e.ShippingCost
		o.Subtotal = e.Amount
	case ItemAdded:
		o.Items += e.Quantity
		o.Subtotal = o.Subtotal.Add(e.Price.Mul(decimal.NewFromInt(e.Quantity)))
	case OrderShipped:
		o.Shipped = true
	}
	o.Total = o.Subtotal.Add(o.TaxAmount).Add(o.ShippingCost)
	return o
}

func decide(o Order, c Command) ([]Event, error) {
	switch c := c.(type) {
	case Create:
		if o.Exists {
			return nil, ErrExists
		}
		if c.Amount.IsNegative() || c.TaxAmount.IsNegative() || c.ShippingCst.IsNegative() {
			return nil, ErrBadAmounts
		}
		return []Event{OrderCreated{Customer: c.Customer, Amount: c.Amount, TaxAmount: c.TaxAmount, ShippingCost: c.ShippingCst}}, nil
	case AddItem:
		switch {
		case !o.Exists:
			return nil, ErrNoOrder
		case o.Shipped:
			return nil, ErrShipped
		case c.SKU == "" || c.Quantity <= 0 || c.Price.IsNegative():
			return nil, fmt.Errorf("%w: %+v", ErrBadItem, c)
		}
		return []Event{ItemAdded{SKU: c.SKU, Quantity: c.Quantity, Price: c.Price}}, nil
	case Ship:
		switch {
		case !o.Exists:
			return nil, ErrNoOrder
		case o.Shipped:
			return nil, ErrShipped
		case o.Items == 0:
			return nil, ErrEmpty
		}
		return []Event{OrderShipped{}}, nil
	}
	return nil, fmt.Errorf("orders: unknown command %T", c)
}

// withDefault returns an upcaster that adds a field with value "0" when it
// is missing: v1 had no tax, v2 no shipping. It edits the JSON text rather
// than re-encoding it: upcasters run on every read of an old event.
func withDefault(field string) event.Upcaster {
	quoted := []byte(`"` + field + `"`)
	return func(data []byte) ([]byte, error) {
		obj := bytes.TrimSpace(data)
		if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
			return nil, errors.New("orders: event data is not a JSON object")
		}
		// Data without the quoted name cannot have the field, so most old
		// events need no parse; with it, parse to be sure it is a key.
		empty := len(bytes.TrimSpace(obj[1:len(obj)-1])) == 0
		if bytes.Contains(obj, quoted) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(obj, &m); err != nil {
				return nil, err
			}
			if _, ok := m[field]; ok {
				return data, nil
			}
		}
		// Without the name, the data is not checked here: appending a
		// member cannot make malformed JSON well-formed (the appended
		// text's first quote cannot close or escape into an open string),
		// and every reader of upcast data (Registry.Decode, the declarative
		// projections' scanner, jsonscan.Fields) rejects malformed
		// JSON. Checking here too cost a replay a full extra pass per step.
		out := make([]byte, 0, len(obj)+len(field)+8)
		out = append(out, obj[:len(obj)-1]...)
		if !empty {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, field...)
		out = append(out, `":"0"}`...)
		return out, nil
	}
}

// Register registers the order events; OrderCreated is version 3.
func Register(r *event.Registry) error {
	return errors.Join(
		event.Register[OrderCreated](r, "order.created", event.Version(3),
			event.Upcast(1, withDefault("tax_amount")),
			event.Upcast(2, withDefault("shipping_cost"))),
		event.Register[ItemAdded](r, "order.item_added"),
		event.Register[OrderShipped](r, "order.shipped"),
	)
}
