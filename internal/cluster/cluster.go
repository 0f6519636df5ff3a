// Package cluster runs one node's share of the read side when several
// Strata nodes use one PostgreSQL database: every projection is cut into
// partitions, every partition is a lease (pglease), and for each lease this
// node holds it runs a projection.Runner of that partition, writing into the
// shared PostgreSQL read models. A node that dies loses its leases after
// their time to live; another node's runner then continues from the
// partition's checkpoint. A runner commits a batch only if the checkpoint is
// still where it found it, so a node that comes back late never applies an
// event a second time.
package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/pglease"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// Options configure a node's read side. The zero value is valid.
type Options struct {
	// Partitions is how many shares each projection is cut into: the unit
	// of work that moves between nodes. A projection split in more than
	// one must write its rows commutatively across keys (see
	// projection.Options.Partition). Default 1: each projection whole.
	Partitions int
	// PartitionsOf, when it names a projection, overrides Partitions for
	// it.
	PartitionsOf map[string]int
	// Lease configures the leases (schema, node name, time to live).
	Lease pglease.Options
	// Runner configures each partition's runner; its Partition is set
	// per lease.
	Runner projection.Options
}

// Run runs this node's share of ps until ctx ends, reading src and writing
// into db (PostgreSQL, opened by projection.OpenPostgres), with the leases
// in pool's database. It returns ctx's error, or why it could not start.
func Run(ctx context.Context, pool *pgxpool.Pool, db *sql.DB, src store.Store, ps []projection.Projection, opts Options) error {
	var shares []Share
	for _, p := range ps {
		n := max(opts.Partitions, 1)
		if c, ok := opts.PartitionsOf[p.Name()]; ok {
			n = max(c, 1)
		}
		for k := range n {
			part := projection.Partition{Index: k, Count: n}
			shares = append(shares, Share{Lease: projection.PartitionName(p.Name(), part), Projection: p, DB: db, Partition: part})
		}
	}
	return RunShares(ctx, pool, src, shares, opts)
}

// Share is one lease's work: a partition of a projection into a database.
type Share struct {
	Lease      string // unique among the shares
	Projection projection.Projection
	DB         *sql.DB
	Partition  projection.Partition
	// Quiet: a version being built, whose side effects the serving one
	// has had.
	Quiet bool
}

// RunShares runs this node's share of shares until ctx ends.
func RunShares(ctx context.Context, pool *pgxpool.Pool, src store.Store, shares []Share, opts Options) error {
	if len(shares) == 0 {
		return errors.New("cluster: no projections to run")
	}
	byLease := make(map[string]Share, len(shares))
	items := make([]string, 0, len(shares))
	for _, sh := range shares {
		if _, dup := byLease[sh.Lease]; dup {
			return fmt.Errorf("cluster: two shares are named %q", sh.Lease)
		}
		byLease[sh.Lease] = sh
		items = append(items, sh.Lease)
	}
	sharer, err := pglease.New(ctx, pool, opts.Lease)
	if err != nil {
		return err
	}
	return sharer.Run(ctx, items, func(ctx context.Context, l pglease.Lease) error {
		sh := byLease[l.Name]
		ro := opts.Runner
		ro.Partition, ro.Quiet = sh.Partition, sh.Quiet
		return projection.NewRunner(sh.Projection, sh.DB, src, ro).Run(ctx)
	})
}
