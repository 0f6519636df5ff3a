package app

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/internal/cluster"
	"github.com/stratadb/strata/pglease"
	"github.com/stratadb/strata/pgstate"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// clusterNode is what a node of a cluster keeps in PostgreSQL instead of
// its data directory.
type clusterNode struct {
	cfg   Cluster
	pool  *pgxpool.Pool
	db    *sql.DB // the read models
	state *pgstate.Store
	reads *cluster.ReadSide
	rules *rulesLeader
}

func openClusterNode(ctx context.Context, cfg Config) (n *clusterNode, err error) {
	c := *cfg.Cluster
	n = &clusterNode{cfg: c}
	defer func() {
		if err != nil {
			n.close()
			err = fmt.Errorf("open the cluster node: %w", err)
		}
	}()
	if n.pool, err = pgxpool.New(ctx, c.URL); err != nil {
		return n, err
	}
	if n.db, err = projection.OpenPostgres(ctx, c.URL, c.Schema); err != nil {
		return n, err
	}
	if n.state, err = pgstate.Open(ctx, n.pool, c.Schema); err != nil {
		return n, err
	}
	if n.reads, err = cluster.NewReadSide(ctx, n.db, c.URL, c.Schema, cfg.Store, c.Partitions, cfg.Logger); err != nil {
		return n, err
	}
	if err = cluster.EnsureTables(ctx, n.db, nodeURLsDDL); err != nil {
		return n, err
	}
	return n, nil
}

// run starts the node's share of the work: the projections' partitions,
// the jobs, and the alerts stream's derivation, which one node at a time
// does. It returns the jobs, for the server.
func (n *clusterNode) run(ctx context.Context, wg *sync.WaitGroup, st store.Store, auth *rules.Authorizer, demo bool, log *slog.Logger) (*clusterJobs, error) {
	n.rules = &rulesLeader{node: n, auth: auth, log: log}
	var demoTxns func(context.Context)
	if demo {
		demoTxns = func(ctx context.Context) { demoTransactions(ctx, auth, log) }
	}
	lease := pglease.Options{Schema: n.cfg.Schema, Node: n.cfg.Node, TTL: n.cfg.LeaseTTL, Logger: log}
	js, err := newClusterJobs(ctx, n, st, log, lease)
	if err != nil {
		return nil, fmt.Errorf("cluster: jobs: %w", err)
	}
	wg.Go(func() { js.run(ctx) })
	wg.Go(func() {
		err := n.reads.Run(ctx, n.pool, cluster.Options{Lease: lease, Runner: projection.Options{Logger: log}})
		if ctx.Err() == nil {
			log.Error("cluster: the projections stopped", "err", err)
		}
	})
	wg.Go(func() {
		sh, err := pglease.New(ctx, n.pool, lease)
		if err == nil {
			err = sh.Run(ctx, []string{"alerts", "rules"}, func(ctx context.Context, l pglease.Lease) error {
				if l.Name == "rules" {
					return n.rules.lead(ctx, demoTxns)
				}
				deriveAlerts(ctx, st, log)
				return ctx.Err()
			})
		}
		if ctx.Err() == nil {
			log.Error("cluster: the alerts and the rules stopped", "err", err)
		}
	})
	log.Info("cluster node", "node", lease.Node, "schema", n.cfg.Schema, "partitions", max(n.cfg.Partitions, 1))
	return js, nil
}

func (n *clusterNode) close() {
	if n.reads != nil {
		n.reads.Close()
	}
	if n.db != nil {
		n.db.Close()
	}
	if n.pool != nil {
		n.pool.Close()
	}
}
