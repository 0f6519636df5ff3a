package cluster

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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// ReadSide is the read side of strata serve --cluster: the declarative
// projections every node runs (stored in PostgreSQL, so that a projection
// applied on one node runs on all), their read models, status and queries,
// all in one PostgreSQL schema the nodes share.
type ReadSide struct {
	db         *sql.DB // the read models (projection.OpenPostgres)
	src        store.Store
	partitions int
	log        *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed when this node applies a projection
}

// ErrChanged: a projection of that name runs with another definition. A
// cluster builds no second version beside a serving one (yet): apply the
// change under a new name.
var ErrChanged = errors.New("cluster: a projection of that name runs with another definition; changing a projection is not supported in cluster mode yet (apply it under a new name)")

// The partition count is the projection's, fixed when it is applied: nodes
// started with different --partitions must still cut it the same way, or
// two of them would apply the same events under different checkpoints.
const specsDDL = `CREATE TABLE IF NOT EXISTS strata_projection_specs (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	partitions INT NOT NULL CHECK (partitions BETWEEN 1 AND 1024),
	applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)`

// applied is a stored projection.
type applied struct {
	p          *projection.Declarative
	partitions int
}

// NewReadSide prepares the read side in db, following src. A projection
// applied through it is cut in partitions (at least 1) for good: every node
// cuts it as it was when applied.
func NewReadSide(ctx context.Context, db *sql.DB, src store.Store, partitions int, log *slog.Logger) (*ReadSide, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Under a lock: nodes starting together would race in CREATE TABLE.
	err := func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(1398035987) -- "STR\x13"`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, specsDDL); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return nil, fmt.Errorf("cluster: read side: %w", err)
	}
	return &ReadSide{db: db, src: src, partitions: max(partitions, 1), log: log, changed: make(chan struct{})}, nil
}

// specs returns the applied projections, by name.
func (r *ReadSide) specs(ctx context.Context) (map[string]applied, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT name, spec, partitions FROM strata_projection_specs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]applied{}
	for rows.Next() {
		var name, src string
		var n int
		if err := rows.Scan(&name, &src, &n); err != nil {
			return nil, err
		}
		p, err := projection.ParseSpec([]byte(src))
		if err != nil {
			return nil, fmt.Errorf("cluster: stored projection %s: %w", name, err)
		}
		out[name] = applied{p, n}
	}
	return out, rows.Err()
}

// Apply stores a new projection, which every node then runs its share of;
// the same definition again changes nothing, another one is ErrChanged.
func (r *ReadSide) Apply(ctx context.Context, p *projection.Declarative, src []byte) error {
	res, err := r.db.ExecContext(ctx, `INSERT INTO strata_projection_specs (name, spec, partitions) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, p.Name(), string(src), r.partitions)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		r.mu.Lock()
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
		return nil
	}
	specs, err := r.specs(ctx)
	if err != nil {
		return err
	}
	if have, ok := specs[p.Name()]; ok && have.p.Definition() != p.Definition() {
		return ErrChanged
	}
	return nil
}

func (r *ReadSide) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// specPoll is how often a node looks for projections applied on others.
const specPoll = 2 * time.Second

// Run runs this node's share of the applied projections until ctx ends,
// with the leases in pool's database. When the set of projections changes
// (applied here or on another node) the node gives its leases back and
// shares the new set.
func (r *ReadSide) Run(ctx context.Context, pool *pgxpool.Pool, opts Options) error {
	tick := time.NewTicker(specPoll)
	defer tick.Stop()
	for {
		specs, err := r.specs(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("cluster: cannot read the projections; trying again", "err", err)
			specs = nil
		}
		names := slices.Sorted(maps.Keys(specs))
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		if len(names) > 0 {
			ps := make([]projection.Projection, len(names))
			opts.PartitionsOf = map[string]int{}
			for i, n := range names {
				ps[i] = specs[n].p
				opts.PartitionsOf[n] = specs[n].partitions
			}
			r.log.Info("cluster: sharing the projections with the other nodes", "projections", strings.Join(names, ","))
			go func() { done <- Run(runCtx, pool, r.db, r.src, ps, opts) }()
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				stop()
				if len(names) > 0 {
					<-done
				}
				return ctx.Err()
			case err := <-done:
				stop()
				return err
			case <-r.changes():
				break wait
			case <-tick.C:
				now, err := r.specs(ctx)
				if err == nil && !slices.Equal(slices.Sorted(maps.Keys(now)), names) {
					break wait
				}
			}
		}
		stop()
		if len(names) > 0 {
			<-done
		}
	}
}

// partitionNames returns the checkpoint names of a's partitions.
func partitionNames(name string, a applied) []string {
	out := make([]string, max(a.partitions, 1))
	for k := range out {
		out[k] = projection.PartitionName(name, projection.Partition{Index: k, Count: len(out)})
	}
	return out
}

// Status reports projection name across its partitions: the lowest
// position, failed if one is, paused if one is, active if one runs.
func (r *ReadSide) Status(ctx context.Context, name string, head uint64) (readmodels.Status, error) {
	specs, err := r.specs(ctx)
	if err != nil {
		return readmodels.Status{}, err
	}
	a, ok := specs[name]
	if !ok {
		return readmodels.Status{}, fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
	}
	out := readmodels.Status{Name: name, Head: head, State: projection.StateStarting}
	now := time.Now()
	for k, pn := range partitionNames(name, a) {
		st, err := projection.ReadStored(ctx, r.db, pn)
		if errors.Is(err, projection.ErrUnknownProjection) {
			st = projection.Stored{Name: pn, State: projection.StateStarting}
		} else if err != nil {
			return out, err
		}
		if k == 0 || st.Position < out.Position {
			out.Position = st.Position
		}
		out.Active = out.Active || st.Active(now)
		switch {
		case st.State == projection.StateFailed:
			out.State, out.Failure = st.State, st.Failure
		case st.State == projection.StatePaused && out.State != projection.StateFailed:
			out.State = st.State
		case st.State == projection.StateRunning && out.State == projection.StateStarting:
			out.State = st.State
		}
	}
	out.Nodes = r.holders(ctx, partitionNames(name, a))
	if head > out.Position {
		out.LagEvents = head - out.Position
		for rec, err := range r.src.ReadAll(ctx, store.ReadAllOptions{After: out.Position, Limit: 1}) {
			if err == nil {
				out.LagSeconds = time.Since(rec.Time).Seconds()
			}
		}
	}
	return out, nil
}

// holders returns the nodes holding the leases named, sorted, each once
// (none when no lease table is there yet).
func (r *ReadSide) holders(ctx context.Context, names []string) []string {
	rows, err := r.db.QueryContext(ctx, `SELECT DISTINCT holder FROM strata_leases
WHERE name = ANY ($1) AND holder IS NOT NULL AND expires_at > clock_timestamp()
ORDER BY holder`, names)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if rows.Scan(&h) == nil {
			out = append(out, h)
		}
	}
	return out
}

// List reports every applied projection.
func (r *ReadSide) List(ctx context.Context, head uint64) ([]readmodels.Status, error) {
	specs, err := r.specs(ctx)
	if err != nil {
		return nil, err
	}
	out := []readmodels.Status{}
	for _, n := range slices.Sorted(maps.Keys(specs)) {
		st, err := r.Status(ctx, n, head)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// lookup returns the applied projection name.
func (r *ReadSide) lookup(ctx context.Context, name string) (applied, error) {
	specs, err := r.specs(ctx)
	if err != nil {
		return applied{}, err
	}
	a, ok := specs[name]
	if !ok {
		return a, fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
	}
	return a, nil
}

// SetPaused pauses or resumes every partition of name (their runners, on
// whichever nodes, follow within their poll interval).
func (r *ReadSide) SetPaused(ctx context.Context, name string, paused bool) error {
	a, err := r.lookup(ctx, name)
	if err != nil {
		return err
	}
	for _, pn := range partitionNames(name, a) {
		if err := projection.SetPaused(ctx, r.db, pn, paused); err != nil && !errors.Is(err, projection.ErrUnknownProjection) {
			return err
		}
	}
	return nil
}

// Skip moves every failed partition of name past the event it failed on.
func (r *ReadSide) Skip(ctx context.Context, name, reason string) error {
	a, err := r.lookup(ctx, name)
	if err != nil {
		return err
	}
	skipped := 0
	for _, pn := range partitionNames(name, a) {
		err := projection.SkipFailed(ctx, r.db, pn, reason, time.Now())
		switch {
		case err == nil:
			skipped++
		case errors.Is(err, projection.ErrNotFailed), errors.Is(err, projection.ErrUnknownProjection):
		default:
			return err
		}
	}
	if skipped == 0 {
		return fmt.Errorf("%w: %s", projection.ErrNotFailed, name)
	}
	return nil
}

// Query runs one read-only statement over the read models, in one
// snapshot with the checkpoints, if every projection has applied pos; it
// reports whether they had, and the lowest position they reflect.
func (r *ReadSide) Query(ctx context.Context, pos uint64, query string, args []any, fn func(rows *sql.Rows) error) (bool, uint64, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return false, 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = '30s'`); err != nil {
		return false, 0, err
	}
	specs, err := r.specs(ctx)
	if err != nil {
		return false, 0, err
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(specs)) {
		parts = append(parts, partitionNames(n, specs[n])...)
	}
	// A partition no runner has committed yet reflects nothing (0).
	var low int64
	if len(parts) > 0 {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT to_regclass('strata_checkpoints') IS NOT NULL`).Scan(&exists); err != nil {
			return false, 0, err
		}
		if exists {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(min(position), 0), count(*) FROM strata_checkpoints WHERE projection = ANY ($1)`, parts).Scan(&low, &n); err != nil {
				return false, 0, err
			}
			if n < len(parts) {
				low = 0
			}
		}
	}
	if uint64(low) < pos {
		return false, uint64(low), nil
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return false, uint64(low), err
	}
	defer rows.Close()
	return true, uint64(low), fn(rows)
}
