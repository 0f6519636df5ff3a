package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/examples/bank"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/internal/config"
)

// The write side over HTTP: the examples' commands (bank accounts and
// orders, decided by their deciders against the log), and any aggregate's
// state now, at a past time or version, and its history.

type stateOutput struct {
	Body struct {
		Stream   string `json:"stream"`
		Version  uint64 `json:"version" doc:"the stream version the state reflects"`
		Position uint64 `json:"position,omitempty" doc:"after a command: the log position of its last event (0: it changed nothing)"`
		State    any    `json:"state"`
	}
}

func (s *Server) registerExamples() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "state", Method: http.MethodGet, Path: "/v1/state/{stream}",
		Summary:     "An aggregate's state: now, at a time, or after a version",
		Description: "Folds the stream's events with the decider of its category (the part before the first -: account, order).",
		Tags:        []string{"write side"}, Errors: []int{400, 404},
	}, config.ScopeRead), s.state)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "history", Method: http.MethodGet, Path: "/v1/history/{stream}",
		Summary: "Every state an aggregate held in a time range, with when it held",
		Tags:    []string{"write side"}, Errors: []int{400, 404},
	}, config.ScopeRead), s.history)
	bankOp := func(id, path, summary string, cmd func(*bankInput) (bank.Command, error)) {
		huma.Register(s.api, scoped(huma.Operation{
			OperationID: id, Method: http.MethodPost, Path: path, Summary: summary,
			Tags: []string{"write side"}, Errors: []int{400, 409, 422},
		}, config.ScopeAppend), func(ctx context.Context, in *bankInput) (*stateOutput, error) {
			if s.opts.Examples == nil {
				return nil, errNoExamples
			}
			c, err := cmd(in)
			if err != nil {
				return nil, err
			}
			return handle(ctx, s, s.opts.Examples.Bank, in.ID, c)
		})
	}
	bankOp("bank-open", "/v1/bank/{id}/open", "Open a bank account (stream account-ID)", func(in *bankInput) (bank.Command, error) {
		initial, err := amount(in.Body.Amount, true)
		return bank.Open{Owner: in.Body.Owner, Initial: initial}, err
	})
	bankOp("bank-deposit", "/v1/bank/{id}/deposit", "Deposit into a bank account", func(in *bankInput) (bank.Command, error) {
		a, err := amount(in.Body.Amount, false)
		return bank.Deposit{Amount: a}, err
	})
	bankOp("bank-withdraw", "/v1/bank/{id}/withdraw", "Withdraw from a bank account (refused: insufficient funds)", func(in *bankInput) (bank.Command, error) {
		a, err := amount(in.Body.Amount, false)
		return bank.Withdraw{Amount: a}, err
	})
	orderOp := func(id, path, summary string, cmd func(*orderInput) (orders.Command, error)) {
		huma.Register(s.api, scoped(huma.Operation{
			OperationID: id, Method: http.MethodPost, Path: path, Summary: summary,
			Tags: []string{"write side"}, Errors: []int{400, 409, 422},
		}, config.ScopeAppend), func(ctx context.Context, in *orderInput) (*stateOutput, error) {
			if s.opts.Examples == nil {
				return nil, errNoExamples
			}
			c, err := cmd(in)
			if err != nil {
				return nil, err
			}
			return handle(ctx, s, s.opts.Examples.Orders, in.ID, c)
		})
	}
	orderOp("order-create", "/v1/orders/{id}/create", "Create an order (stream order-ID)", func(in *orderInput) (orders.Command, error) {
		var c orders.Create
		var err error
		b := in.body()
		c.Customer = b.Customer
		if c.TaxAmount, err = amount(b.Tax, true); err != nil {
			return nil, err
		}
		if c.ShippingCst, err = amount(b.Shipping, true); err != nil {
			return nil, err
		}
		return c, nil
	})
	orderOp("order-add-item", "/v1/orders/{id}/items", "Add an item to an order", func(in *orderInput) (orders.Command, error) {
		b := in.body()
		p, err := amount(b.Price, true)
		return orders.AddItem{SKU: b.SKU, Quantity: b.Quantity, Price: p}, err
	})
	orderOp("order-ship", "/v1/orders/{id}/ship", "Ship an order", func(in *orderInput) (orders.Command, error) {
		return orders.Ship{}, nil
	})
}

var errNoExamples = api.NewError(api.CodeNotFound, "this server runs no examples")

type bankInput struct {
	ID   string `path:"id"`
	Body struct {
		Owner  string `json:"owner,omitempty" doc:"open: the account's owner"`
		Amount string `json:"amount,omitempty" doc:"an exact decimal: deposit and withdraw; open: the initial deposit"`
	}
}

type orderInput struct {
	ID   string     `path:"id"`
	Body *orderBody // ship takes none
}

type orderBody struct {
	Customer string `json:"customer,omitempty" doc:"create"`
	Tax      string `json:"tax,omitempty" doc:"create: the tax amount, an exact decimal"`
	Shipping string `json:"shipping,omitempty" doc:"create: the shipping cost"`
	SKU      string `json:"sku,omitempty" doc:"items"`
	Quantity int64  `json:"quantity,omitempty" doc:"items"`
	Price    string `json:"price,omitempty" doc:"items: the unit price"`
}

func (in *orderInput) body() orderBody {
	if in.Body == nil {
		return orderBody{}
	}
	return *in.Body
}

// amount parses an exact decimal ("" is 0 when optional).
func amount(s string, optional bool) (decimal.Decimal, error) {
	if s == "" && optional {
		return decimal.Zero, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return d, api.NewError(api.CodeBadRequest, "amount %q: want an exact decimal such as 12.50", s)
	}
	return d, nil
}

// handle runs a command on a repository and answers with the new state.
func handle[S any, C any, E any](ctx context.Context, s *Server, repo *aggregate.Repository[S, C, E], id string, cmd C) (*stateOutput, error) {
	streamName := repo.Stream(id)
	if err := stream(ctx, streamName); err != nil {
		return nil, err
	}
	res, err := repo.Handle(ctx, id, cmd)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	st, v, err := repo.Load(ctx, id)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &stateOutput{}
	out.Body.Stream, out.Body.Version, out.Body.Position, out.Body.State = streamName, v, res.Position, st
	return out, nil
}

type stateInput struct {
	Stream  string `path:"stream"`
	At      string `query:"at" doc:"the state as of this time (RFC 3339)"`
	Version uint64 `query:"version" doc:"the state after this stream version"`
}

func (s *Server) inspector(ctx context.Context, name string) (aggregate.Inspector, string, error) {
	if s.opts.Examples == nil {
		return nil, "", errNoExamples
	}
	if err := stream(ctx, name); err != nil {
		return nil, "", err
	}
	in, id, err := s.opts.Examples.Inspector(name)
	if err != nil {
		return nil, "", api.NewError(api.CodeNotFound, "%v", err)
	}
	return in, id, nil
}

func (s *Server) state(ctx context.Context, in *stateInput) (*stateOutput, error) {
	insp, id, err := s.inspector(ctx, in.Stream)
	if err != nil {
		return nil, err
	}
	var st any
	var v uint64
	switch {
	case in.At != "" && in.Version != 0:
		return nil, api.NewError(api.CodeBadRequest, "give at or version, not both")
	case in.At != "":
		t, perr := time.Parse(time.RFC3339Nano, in.At)
		if perr != nil {
			return nil, api.NewError(api.CodeBadRequest, "at %q: want RFC 3339", in.At)
		}
		st, v, err = insp.StateAt(ctx, id, t)
	case in.Version != 0:
		st, v, err = insp.StateAtVersion(ctx, id, in.Version)
	default:
		st, v, err = insp.Load(ctx, id)
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &stateOutput{}
	out.Body.Stream, out.Body.Version, out.Body.State = in.Stream, v, st
	return out, nil
}

type historyInput struct {
	Stream string `path:"stream"`
	From   string `query:"from" doc:"RFC 3339 (default: the beginning)"`
	To     string `query:"to" doc:"RFC 3339 (default: now)"`
}

type change struct {
	From     string `json:"from"`
	To       string `json:"to,omitempty" doc:"empty: still in force"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
	State    any    `json:"state"`
}

type historyOutput struct {
	Body struct {
		Stream  string   `json:"stream"`
		Changes []change `json:"changes"`
	}
}

func (s *Server) history(ctx context.Context, in *historyInput) (*historyOutput, error) {
	insp, id, err := s.inspector(ctx, in.Stream)
	if err != nil {
		return nil, err
	}
	from, to := time.Time{}, time.Now().Add(time.Second)
	if in.From != "" {
		if from, err = time.Parse(time.RFC3339Nano, in.From); err != nil {
			return nil, api.NewError(api.CodeBadRequest, "from %q: want RFC 3339", in.From)
		}
	}
	if in.To != "" {
		if to, err = time.Parse(time.RFC3339Nano, in.To); err != nil {
			return nil, api.NewError(api.CodeBadRequest, "to %q: want RFC 3339", in.To)
		}
	}
	out := &historyOutput{}
	out.Body.Stream, out.Body.Changes = in.Stream, []change{}
	for c, err := range insp.Changes(ctx, id, from, to) {
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		ch := change{From: c.From.UTC().Format(time.RFC3339Nano), Version: c.Version, Position: c.Position, State: c.State}
		if !c.To.IsZero() {
			ch.To = c.To.UTC().Format(time.RFC3339Nano)
		}
		out.Body.Changes = append(out.Body.Changes, ch)
	}
	return out, nil
}
