package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/rules/txngen"
	"github.com/stratadb/strata/store"
)

// Demo traffic, so that a new user sees live data at once: card
// transactions through the fraud rules (with planted bursts and large
// spends, so some are denied) and orders through the order example's
// decider, at a modest rate, in real time, until ctx ends.
const (
	demoTxnRate   = 5.0             // transactions per second
	demoOrderTick = 2 * time.Second // a new order every tick
)

func runDemo(ctx context.Context, wg *sync.WaitGroup, st store.Store, auth *rules.Authorizer, log *slog.Logger, transactions bool) {
	if transactions {
		wg.Go(func() { demoTransactions(ctx, auth, log) })
	}
	wg.Go(func() { demoOrders(ctx, st, log) })
}

func demoTransactions(ctx context.Context, auth *rules.Authorizer, log *slog.Logger) {
	start := time.Now().UTC()
	opts := txngen.Options{Users: 200, Rate: demoTxnRate, FraudRatio: 0.1, Duration: 365 * 24 * time.Hour, Start: start, Seed: uint64(start.UnixNano())}
	_, err := txngen.Generate(opts, func(txn rules.Transaction) bool {
		// Event time is wall time: wait for it.
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Until(txn.At)):
		}
		if _, err := auth.Authorize(ctx, txn); err != nil && ctx.Err() == nil {
			log.Warn("demo: authorize", "err", err)
		}
		return true
	})
	if err != nil {
		log.Warn("demo: transactions stopped", "err", err)
	}
}

func demoOrders(ctx context.Context, st store.Store, log *slog.Logger) {
	cat, err := examples.New(st, nil)
	if err != nil {
		log.Warn("demo: orders", "err", err)
		return
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	skus := []string{"A1", "B7", "C3", "D9", "E2"}
	tick := time.NewTicker(demoOrderTick)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := fmt.Sprintf("demo-%d-%d", time.Now().Unix(), n)
		cmds := []orders.Command{orders.Create{Customer: fmt.Sprintf("c-%d", r.IntN(40)), TaxAmount: decimal.New(int64(r.IntN(500)), -2), ShippingCst: decimal.New(495, -2)}}
		for range 1 + r.IntN(3) {
			cmds = append(cmds, orders.AddItem{SKU: skus[r.IntN(len(skus))], Quantity: int64(1 + r.IntN(3)), Price: decimal.New(int64(500+r.IntN(5000)), -2)})
		}
		if r.IntN(10) < 7 {
			cmds = append(cmds, orders.Ship{})
		}
		for _, c := range cmds {
			if _, err := cat.Orders.Handle(ctx, id, c); err != nil {
				if ctx.Err() == nil {
					log.Warn("demo: order", "order", id, "err", err)
				}
				break
			}
		}
	}
}
