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
	if len(ps) == 0 {
		return errors.New("cluster: no projections to run")
	}
	type share struct {
		p    projection.Projection
		part projection.Partition
	}
	shares := map[string]share{}
	var items []string
	for _, p := range ps {
		n := max(opts.Partitions, 1)
		if c, ok := opts.PartitionsOf[p.Name()]; ok {
			n = max(c, 1)
		}
		for k := range n {
			part := projection.Partition{Index: k, Count: n}
			name := projection.PartitionName(p.Name(), part)
			if _, dup := shares[name]; dup {
				return fmt.Errorf("cluster: two projections are named %q", p.Name())
			}
			shares[name] = share{p: p, part: part}
			items = append(items, name)
		}
	}
	sharer, err := pglease.New(ctx, pool, opts.Lease)
	if err != nil {
		return err
	}
	return sharer.Run(ctx, items, func(ctx context.Context, l pglease.Lease) error {
		sh := shares[l.Name]
		ro := opts.Runner
		ro.Partition = sh.part
		return projection.NewRunner(sh.p, db, src, ro).Run(ctx)
	})
}
