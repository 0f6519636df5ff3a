package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/internal/cluster"
	"github.com/stratadb/strata/internal/server"
	"github.com/stratadb/strata/pglease"
	"github.com/stratadb/strata/pgstate"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/stream/job"
)

// clusterJobs runs the windowed jobs of a cluster: their definitions in
// PostgreSQL (applied on any node), each job a lease that one node holds,
// its checkpoint in PostgreSQL, so that the node that takes a job over
// resumes it where it stopped (and the output stream gets each result
// once).
type clusterJobs struct {
	db    *sql.DB
	pool  *pgxpool.Pool
	state *pgstate.Store
	st    store.Store
	log   *slog.Logger
	lease pglease.Options

	mu      sync.Mutex
	runs    map[string]*jobRun // the jobs this node runs or ran
	changed chan struct{}      // closed when a job is applied here
}

const jobSpecsDDL = `CREATE TABLE IF NOT EXISTS strata_job_specs (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)`

func newClusterJobs(ctx context.Context, n *clusterNode, st store.Store, log *slog.Logger, lease pglease.Options) (*clusterJobs, error) {
	if err := cluster.EnsureTables(ctx, n.db, jobSpecsDDL); err != nil {
		return nil, err
	}
	return &clusterJobs{db: n.db, pool: n.pool, state: n.state, st: st, log: log, lease: lease, runs: map[string]*jobRun{}, changed: make(chan struct{})}, nil
}

// specs returns the applied jobs by name, with their sources.
func (cj *clusterJobs) specs(ctx context.Context) (map[string]*jobRun, error) {
	rows, err := cj.db.QueryContext(ctx, `SELECT name, spec FROM strata_job_specs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*jobRun{}
	for rows.Next() {
		var name, src string
		if err := rows.Scan(&name, &src); err != nil {
			return nil, err
		}
		spec, err := job.ParseSpec(strings.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("stored job %s: %w", name, err)
		}
		out[name] = &jobRun{spec: spec, src: []byte(src)}
	}
	return out, rows.Err()
}

// ApplyJob stores a job for the nodes to share; the same definition again
// changes nothing.
func (cj *clusterJobs) ApplyJob(ctx context.Context, spec *job.Spec, src []byte) error {
	res, err := cj.db.ExecContext(ctx, `INSERT INTO strata_job_specs (name, spec) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, spec.Name, string(src))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		cj.mu.Lock()
		close(cj.changed)
		cj.changed = make(chan struct{})
		cj.mu.Unlock()
		return nil
	}
	have, err := cj.specs(ctx)
	if err != nil {
		return err
	}
	if r, ok := have[spec.Name]; ok && string(r.src) != string(src) {
		return errJobExists
	}
	return nil
}

// Jobs reports every job: its progress where this node runs it, else the
// node that does.
func (cj *clusterJobs) Jobs() []server.JobStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	specs, err := cj.specs(ctx)
	if err != nil {
		return nil
	}
	holders := map[string]string{}
	if rows, err := cj.pool.Query(ctx, `SELECT name, holder FROM `+pgx.Identifier{cj.lease.Schema}.Sanitize()+`.strata_leases WHERE holder IS NOT NULL AND expires_at > clock_timestamp()`); err == nil {
		for rows.Next() {
			var n, h string
			if rows.Scan(&n, &h) == nil {
				holders[n] = h
			}
		}
		rows.Close()
	}
	cj.mu.Lock()
	defer cj.mu.Unlock()
	var out []server.JobStatus
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		st := server.JobStatus{Name: name, Output: specs[name].spec.OutputStream(), Node: holders[jobLease(name)]}
		if r, ok := cj.runs[name]; ok && st.Node == cj.lease.Node {
			r.mu.Lock()
			st.Position, st.Watermark, st.Results, st.Late, st.Keys = r.last.Position, r.last.Watermark, r.last.Results, r.last.Late, r.last.Keys
			if r.err != nil {
				st.Error = r.err.Error()
			}
			r.mu.Unlock()
		}
		out = append(out, st)
	}
	return out
}

func jobLease(name string) string { return "job:" + name }

func (cj *clusterJobs) changes() <-chan struct{} {
	cj.mu.Lock()
	defer cj.mu.Unlock()
	return cj.changed
}

// run shares the jobs with the other nodes until ctx ends, sharing anew
// whenever the set of jobs changes (applied here or on another node).
func (cj *clusterJobs) run(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		specs, err := cj.specs(ctx)
		if err != nil {
			cj.log.Warn("cluster: cannot read the jobs; trying again", "err", err)
		}
		names := slices.Sorted(maps.Keys(specs))
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if len(names) == 0 {
				<-runCtx.Done()
				return
			}
			items := make([]string, len(names))
			for i, n := range names {
				items[i] = jobLease(n)
			}
			sh, err := pglease.New(runCtx, cj.pool, cj.lease)
			if err == nil {
				err = sh.Run(runCtx, items, func(ctx context.Context, l pglease.Lease) error {
					return cj.runJob(ctx, specs[strings.TrimPrefix(l.Name, "job:")])
				})
			}
			if runCtx.Err() == nil {
				cj.log.Error("cluster: the jobs stopped; starting again", "err", err)
			}
		}()
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-cj.changes():
				break wait
			case <-done:
				select { // failed: not at once again
				case <-ctx.Done():
				case <-tick.C:
				}
				break wait
			case <-tick.C:
				if now, err := cj.specs(ctx); err == nil && !slices.Equal(slices.Sorted(maps.Keys(now)), names) {
					break wait
				}
			}
		}
		stop()
		<-done
	}
}

// runJob runs one job while this node holds its lease.
func (cj *clusterJobs) runJob(ctx context.Context, r *jobRun) error {
	if r == nil {
		return errors.New("no such job")
	}
	cj.mu.Lock()
	cj.runs[r.spec.Name] = r
	cj.mu.Unlock()
	err := r.spec.RunWith(ctx, cj.st, cj.state.Checkpoint(jobLease(r.spec.Name)), func(p job.Progress) {
		r.mu.Lock()
		r.last = p
		r.mu.Unlock()
	})
	if err != nil && ctx.Err() == nil {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}
	return err
}
