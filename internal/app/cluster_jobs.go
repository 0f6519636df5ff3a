package app

import (
	"context"
	"database/sql"
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
// PostgreSQL (applied on any node), each job cut into shares (its keys,
// by hash; job.Share) fixed when it is applied, each share a lease that
// one node holds with its checkpoint in PostgreSQL, so that the node that
// takes a share over resumes it where it stopped (and the output stream
// gets each result once).
type clusterJobs struct {
	db     *sql.DB
	pool   *pgxpool.Pool
	state  *pgstate.Store
	st     store.Store
	log    *slog.Logger
	lease  pglease.Options
	shares int // for jobs applied through this node

	mu       sync.Mutex
	progress map[string]*shareRun // by lease: the shares this node runs or ran
	changed  chan struct{}        // closed when a job is applied here
}

// shareRun is a share's last progress on this node.
type shareRun struct {
	last job.Progress
	err  error
}

// appliedJob is a stored job.
type appliedJob struct {
	spec   *job.Spec
	src    string
	shares int
}

const jobSpecsDDL = `CREATE TABLE IF NOT EXISTS strata_job_specs (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	shares     INT NOT NULL CHECK (shares BETWEEN 1 AND 1024),
	applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)`

func newClusterJobs(ctx context.Context, n *clusterNode, st store.Store, log *slog.Logger, lease pglease.Options) (*clusterJobs, error) {
	if err := cluster.EnsureTables(ctx, n.db, jobSpecsDDL); err != nil {
		return nil, err
	}
	return &clusterJobs{db: n.db, pool: n.pool, state: n.state, st: st, log: log, lease: lease, shares: max(n.cfg.Partitions, 1),
		progress: map[string]*shareRun{}, changed: make(chan struct{})}, nil
}

// specs returns the applied jobs by name.
func (cj *clusterJobs) specs(ctx context.Context) (map[string]appliedJob, error) {
	rows, err := cj.db.QueryContext(ctx, `SELECT name, spec, shares FROM strata_job_specs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]appliedJob{}
	for rows.Next() {
		var name, src string
		var shares int
		if err := rows.Scan(&name, &src, &shares); err != nil {
			return nil, err
		}
		spec, err := job.ParseSpec(strings.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("stored job %s: %w", name, err)
		}
		out[name] = appliedJob{spec, src, shares}
	}
	return out, rows.Err()
}

// ApplyJob stores a job for the nodes to share, cut into this node's
// --partitions shares; the same definition again changes nothing.
func (cj *clusterJobs) ApplyJob(ctx context.Context, spec *job.Spec, src []byte) error {
	res, err := cj.db.ExecContext(ctx, `INSERT INTO strata_job_specs (name, spec, shares) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, spec.Name, string(src), cj.shares)
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
	if a, ok := have[spec.Name]; ok && a.src != string(src) {
		return errJobExists
	}
	return nil
}

// shareLease names share k of a job cut in n.
func shareLease(name string, k, n int) string {
	if n <= 1 {
		return "job:" + name
	}
	return fmt.Sprintf("job:%s#%d/%d", name, k, n)
}

// Jobs reports every job: the nodes running its shares, and the progress
// of those that run here (the lowest position and watermark, the sums).
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
		a := specs[name]
		st := server.JobStatus{Name: name, Output: a.spec.OutputStream()}
		local := 0
		for k := range a.shares {
			l := shareLease(name, k, a.shares)
			h, ok := holders[l]
			if !ok {
				continue
			}
			if !slices.Contains(st.Nodes, h) {
				st.Nodes = append(st.Nodes, h)
			}
			r, ok := cj.progress[l]
			if h != cj.lease.Node || !ok {
				continue
			}
			if local == 0 || r.last.Position < st.Position {
				st.Position = r.last.Position
			}
			if local == 0 || r.last.Watermark < st.Watermark {
				st.Watermark = r.last.Watermark
			}
			st.Results, st.Late, st.Keys = st.Results+r.last.Results, st.Late+r.last.Late, st.Keys+r.last.Keys
			if r.err != nil {
				st.Error = r.err.Error()
			}
			local++
		}
		slices.Sort(st.Nodes)
		out = append(out, st)
	}
	return out
}

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
		type share struct {
			spec *job.Spec
			sh   job.Share
		}
		byLease := map[string]share{}
		var items []string
		for _, n := range names {
			a := specs[n]
			for k := range a.shares {
				l := shareLease(n, k, a.shares)
				byLease[l] = share{a.spec, job.Share{Index: k, Count: a.shares}}
				items = append(items, l)
			}
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if len(items) == 0 {
				<-runCtx.Done()
				return
			}
			sh, err := pglease.New(runCtx, cj.pool, cj.lease)
			if err == nil {
				err = sh.Run(runCtx, items, func(ctx context.Context, l pglease.Lease) error {
					s := byLease[l.Name]
					return cj.runShare(ctx, l.Name, s.spec, s.sh)
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

// runShare runs one share of a job while this node holds its lease.
func (cj *clusterJobs) runShare(ctx context.Context, lease string, spec *job.Spec, sh job.Share) error {
	r := &shareRun{}
	cj.mu.Lock()
	cj.progress[lease] = r
	cj.mu.Unlock()
	err := spec.RunWith(ctx, cj.st, job.RunOptions{Checkpoints: cj.state.Checkpoint(lease), Share: sh, Progress: func(p job.Progress) {
		cj.mu.Lock()
		r.last = p
		cj.mu.Unlock()
	}})
	if err != nil && ctx.Err() == nil {
		cj.mu.Lock()
		r.err = err
		cj.mu.Unlock()
	}
	return err
}
