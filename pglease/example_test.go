package pglease_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/pglease"
)

// Every node runs the same code; each ends up doing its share of the
// partitions, and takes over the share of a node that dies.
func ExampleSharer_Run() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, "postgres://strata@db:5432/events")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	sharer, err := pglease.New(ctx, pool, pglease.Options{Schema: "strata_work"})
	if err != nil {
		log.Fatal(err)
	}
	items := []string{"invoices#0/3", "invoices#1/3", "invoices#2/3"}
	err = sharer.Run(ctx, items, func(ctx context.Context, l pglease.Lease) error {
		fmt.Println(sharer.Node(), "works on", l.Name, "as holder number", l.Token)
		<-ctx.Done() // the work, until the lease is lost or given back
		return ctx.Err()
	})
	log.Println(err)
}
