package projection_test

import (
	"context"
	"log"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/projection"
)

// A declarative projection kept in PostgreSQL: the same spec, Runner and
// checkpoints as in SQLite.
func ExampleOpenPostgres() {
	ctx := context.Background()
	l, err := eventlog.Open("strata-data", eventlog.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	db, err := projection.OpenPostgres(ctx, "postgres://strata@db:5432/app", "read_models")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	p, err := projection.ParseSpec([]byte(`name: balances
tables: ["CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance TEXT NOT NULL)"]
on:
  bank.deposited: |
    INSERT INTO balances (account, balance) VALUES (:stream_id, dec_add(:data.amount, 0))
    ON CONFLICT (account) DO UPDATE SET balance = dec_add(balances.balance, excluded.balance)
`))
	if err != nil {
		log.Fatal(err)
	}
	// Two runners (here, or on two nodes) share the work, each with its
	// own checkpoint.
	for k := range 2 {
		r := projection.NewRunner(p, db, l, projection.Options{Partition: projection.Partition{Index: k, Count: 2}})
		go r.Run(ctx)
	}
}
