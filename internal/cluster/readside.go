package cluster

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// ReadSide is the read side of strata serve --cluster: the declarative
// projections every node runs, their read models, status and queries, in
// PostgreSQL, shared by the nodes.
//
// A projection has versions, as in a data directory: a new one is built
// beside the serving one when the projection is applied with another
// definition or rebuilt, and takes over once it has caught up. Each version
// lives in a schema of its own (its tables and its runtime tables, named by
// the projection's own SQL), so versions never meet; a query sees the
// serving versions' schemas on its search_path. The definitions, versions
// and states are rows of strata_projection_specs, which every node polls:
// any node may apply, and any node switches a caught-up version in (one
// conditional update).
type ReadSide struct {
	db         *sql.DB // the cluster schema: specs, leases
	url        string
	schema     string
	src        store.Store
	partitions int
	log        *slog.Logger

	mu       sync.Mutex
	changed  chan struct{}           // closed when this node applies or switches
	dbs      map[string]*sql.DB      // by version schema
	marks    map[string]progressMark // by version schema: for rates
	cached   []version               // what Query last read (recentVersions)
	cachedAt time.Time
	ready    map[string]bool // quoted version schemas that have their checkpoint table
}

type progressMark struct {
	pos uint64
	at  time.Time
}

// Version states.
const (
	stateBuilding = "building"
	stateServing  = "serving"
	stateRetired  = "retired"
	stateDropped  = "dropped"
)

// retiredGrace is how long a retired version's schema stays, for queries
// that began before the switch. (A variable for the tests.)
var retiredGrace = time.Minute

const specsDDL = `CREATE TABLE IF NOT EXISTS strata_projection_specs (
	name       TEXT NOT NULL,
	version    INT NOT NULL,
	spec       TEXT NOT NULL,
	-- fixed when applied: every node cuts the version alike
	partitions INT NOT NULL CHECK (partitions BETWEEN 1 AND 1024),
	state      TEXT NOT NULL CHECK (state IN ('building', 'serving', 'retired', 'dropped')),
	-- the log's head when the version was applied: it serves once there
	until      BIGINT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (name, version)
)`

// NewReadSide prepares the read side: db is the cluster schema (schema) of
// the database at url, where each version's schema is created beside it.
// A projection applied through it is cut in partitions (at least 1).
func NewReadSide(ctx context.Context, db *sql.DB, url, schema string, src store.Store, partitions int, log *slog.Logger) (*ReadSide, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := EnsureTables(ctx, db, specsDDL); err != nil {
		return nil, fmt.Errorf("cluster: read side: %w", err)
	}
	return &ReadSide{db: db, url: url, schema: schema, src: src, partitions: max(partitions, 1), log: log,
		changed: make(chan struct{}), dbs: map[string]*sql.DB{}, marks: map[string]progressMark{}, ready: map[string]bool{}}, nil
}

// Close closes the versions' databases, once nothing uses the read side.
func (r *ReadSide) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, db := range r.dbs {
		db.Close()
		delete(r.dbs, s)
	}
}

// EnsureTables runs ddl (CREATE … IF NOT EXISTS statements) holding an
// advisory lock: nodes starting together would otherwise race in it, which
// PostgreSQL does not make atomic.
func EnsureTables(ctx context.Context, db *sql.DB, ddl string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(1398035987)`); err != nil { // "STR\x13"
		return err
	}
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return err
	}
	return tx.Commit()
}

// version is one version of a projection.
type version struct {
	name       string
	number     int
	src        string
	p          *projection.Declarative
	partitions int
	state      string
	until      uint64
	changed    time.Time
}

// key identifies what runs of v: a change of it restarts the sharing.
func (v version) key() string {
	return fmt.Sprintf("%s/%d/%s/%d", v.name, v.number, v.state, v.partitions)
}

// ErrNoVersion: the projection has no version to rebuild from.
var ErrNoVersion = errors.New("cluster: the projection has no version")

// versions returns every version not dropped, by name then number.
func (r *ReadSide) versions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]version, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, version, spec, partitions, state, until, changed_at FROM strata_projection_specs
WHERE state <> 'dropped' ORDER BY name, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []version
	for rows.Next() {
		var v version
		var until int64
		if err := rows.Scan(&v.name, &v.number, &v.src, &v.partitions, &v.state, &until, &v.changed); err != nil {
			return nil, err
		}
		v.until = uint64(until)
		if v.p, err = projection.ParseSpec([]byte(v.src)); err != nil {
			return nil, fmt.Errorf("cluster: stored projection %s version %d: %w", v.name, v.number, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// current returns name's serving and building versions (nil when none).
func current(vs []version, name string) (serving, building *version) {
	for i := range vs {
		if vs[i].name != name {
			continue
		}
		switch vs[i].state {
		case stateServing:
			serving = &vs[i]
		case stateBuilding:
			building = &vs[i]
		}
	}
	return serving, building
}

// schemaOf is the schema of version v: the cluster schema, the name and
// the number, or a digest of them where PostgreSQL's 63 bytes would not do.
func (r *ReadSide) schemaOf(name string, number int) string {
	s := r.schema + "_" + name + "_v" + strconv.Itoa(number)
	if len(s) > 63 {
		sum := sha256.Sum256([]byte(s))
		s = s[:40] + "_" + hex.EncodeToString(sum[:8])
	}
	return s
}

// dbOf opens (once) the database of v's schema.
func (r *ReadSide) dbOf(ctx context.Context, name string, number int) (*sql.DB, error) {
	s := r.schemaOf(name, number)
	r.mu.Lock()
	db, ok := r.dbs[s]
	r.mu.Unlock()
	if ok {
		return db, nil
	}
	db, err := projection.OpenPostgres(ctx, r.url, s)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.dbs[s]; ok {
		db.Close()
		return have, nil
	}
	r.dbs[s] = db
	return db, nil
}

func (r *ReadSide) signal() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.cachedAt = time.Time{} // what Query uses is stale
	r.mu.Unlock()
}

func (r *ReadSide) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Apply stores a projection: a new one builds its first version; the
// definition of its serving or building version again changes nothing;
// another definition builds a new version beside the serving one (a build
// of yet another definition in progress is abandoned for it).
func (r *ReadSide) Apply(ctx context.Context, p *projection.Declarative, src []byte) error {
	return r.newVersion(ctx, p.Name(), func(serving, building *version) (string, bool) {
		for _, v := range []*version{building, serving} {
			if v != nil && v.p.Definition() == p.Definition() {
				return "", false
			}
		}
		return string(src), true
	})
}

// Rebuild builds a new version of name from its serving definition, from
// the start of the log, beside the serving one.
func (r *ReadSide) Rebuild(ctx context.Context, name string) error {
	return r.newVersion(ctx, name, func(serving, building *version) (string, bool) {
		switch {
		case serving != nil:
			return serving.src, true
		case building != nil:
			return building.src, true
		}
		return "", false
	})
}

// newVersion adds a building version of name with the spec decide picks
// (or none), in one transaction holding name's rows.
func (r *ReadSide) newVersion(ctx context.Context, name string, decide func(serving, building *version) (string, bool)) error {
	head, err := r.src.Head(ctx)
	if err != nil {
		return err
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(1398035989, hashtext($1))`, name); err != nil {
		return err
	}
	vs, err := r.versions(ctx, tx)
	if err != nil {
		return err
	}
	serving, building := current(vs, name)
	src, ok := decide(serving, building)
	if !ok {
		if serving == nil && building == nil {
			return fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
		}
		return nil
	}
	var n sql.NullInt64 // dropped versions count: their numbers are not reused
	if err := tx.QueryRowContext(ctx, `SELECT max(version) FROM strata_projection_specs WHERE name = $1`, name).Scan(&n); err != nil {
		return err
	}
	number := int(n.Int64) + 1
	if building != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE strata_projection_specs SET state = 'retired', changed_at = clock_timestamp() WHERE name = $1 AND version = $2`, name, building.number); err != nil {
			return err
		}
	}
	// A schema of that name can only be a leftover (of a cluster schema
	// dropped and made again, say): the version starts empty.
	if _, err := tx.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{r.schemaOf(name, number)}.Sanitize()+` CASCADE`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO strata_projection_specs (name, version, spec, partitions, state, until) VALUES ($1, $2, $3, $4, 'building', $5)`,
		name, number, src, r.partitions, int64(head)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	r.log.Info("cluster: building a projection version", "projection", name, "version", number, "until", head)
	r.signal()
	return nil
}

// specPoll is how often a node looks for projections applied, and versions
// switched, on others, and for versions ready to switch.
const specPoll = time.Second

// Run runs this node's share of the projections' versions until ctx ends,
// with the leases in pool's database, switching caught-up versions in and
// dropping retired ones. When the versions change (applied or switched
// here or on another node) the node gives its leases back and shares the
// new set.
func (r *ReadSide) Run(ctx context.Context, pool *pgxpool.Pool, opts Options) error {
	tick := time.NewTicker(specPoll)
	defer tick.Stop()
	keys := func(vs []version) []string {
		out := make([]string, 0, len(vs))
		for _, v := range vs {
			if v.state == stateBuilding || v.state == stateServing {
				out = append(out, v.key())
			}
		}
		return out
	}
	for {
		vs, err := r.versions(ctx, r.db)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("cluster: cannot read the projections; trying again", "err", err)
			vs = nil
		}
		var shares []Share
		for _, v := range vs {
			if v.state != stateBuilding && v.state != stateServing {
				continue
			}
			db, err := r.dbOf(ctx, v.name, v.number)
			if err != nil {
				r.log.Error("cluster: cannot open a projection version's schema", "projection", v.name, "version", v.number, "err", err)
				continue
			}
			for k := range v.partitions {
				part := projection.Partition{Index: k, Count: v.partitions}
				shares = append(shares, Share{
					Lease:      projection.PartitionName(fmt.Sprintf("%s/v%d", v.name, v.number), part),
					Projection: v.p, DB: db, Partition: part, Quiet: v.state == stateBuilding,
				})
			}
		}
		running := keys(vs)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		if len(shares) > 0 {
			go func() { done <- RunShares(runCtx, pool, r.src, shares, opts) }()
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				stop()
				if len(shares) > 0 {
					<-done
				}
				return ctx.Err()
			case err := <-done:
				stop()
				return err
			case <-r.changes():
				break wait
			case <-tick.C:
				r.maintain(ctx)
				now, err := r.versions(ctx, r.db)
				if err == nil && !slices.Equal(keys(now), running) {
					break wait
				}
			}
		}
		stop()
		if len(shares) > 0 {
			<-done
		}
	}
}

// maintain switches in every building version that has caught up, and
// drops the schemas of versions retired a while ago.
func (r *ReadSide) maintain(ctx context.Context) {
	vs, err := r.versions(ctx, r.db)
	if err != nil {
		return
	}
	for i := range vs {
		v := &vs[i]
		switch v.state {
		case stateBuilding:
			serving, _ := current(vs, v.name)
			r.maybeSwitch(ctx, v, serving)
		case stateRetired:
			if time.Since(v.changed) < retiredGrace {
				continue
			}
			s := r.schemaOf(v.name, v.number)
			r.mu.Lock()
			if db, ok := r.dbs[s]; ok {
				db.Close()
				delete(r.dbs, s)
			}
			delete(r.ready, pgx.Identifier{s}.Sanitize())
			r.mu.Unlock()
			if _, err := r.db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`); err != nil {
				r.log.Warn("cluster: cannot drop a retired version's schema", "projection", v.name, "version", v.number, "err", err)
				continue
			}
			r.db.ExecContext(ctx, `UPDATE strata_projection_specs SET state = 'dropped', changed_at = clock_timestamp() WHERE name = $1 AND version = $2 AND state = 'retired'`, v.name, v.number)
		}
	}
}

// maybeSwitch makes building version v serve once every partition has
// reached the head it was applied at and the serving version's position.
func (r *ReadSide) maybeSwitch(ctx context.Context, v, serving *version) {
	// A partition with no checkpoint yet has applied nothing (position 0),
	// which is enough when the log was empty at the apply.
	pos, ok, err := r.reached(ctx, v)
	if err != nil || !ok && pos > 0 || pos < v.until {
		return
	}
	if serving != nil {
		spos, _, err := r.reached(ctx, serving)
		if err != nil || pos < spos {
			return
		}
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE strata_projection_specs SET state = 'serving', changed_at = clock_timestamp() WHERE name = $1 AND version = $2 AND state = 'building'`, v.name, v.number)
	if err != nil {
		return
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return // another node switched it
	}
	if _, err := tx.ExecContext(ctx, `UPDATE strata_projection_specs SET state = 'retired', changed_at = clock_timestamp() WHERE name = $1 AND state = 'serving' AND version <> $2`, v.name, v.number); err != nil {
		return
	}
	if tx.Commit() == nil {
		r.log.Info("cluster: a projection version serves", "projection", v.name, "version", v.number, "position", pos)
		r.signal()
	}
}

// reached returns the lowest checkpoint of v's partitions; ok is false
// until every partition has one.
func (r *ReadSide) reached(ctx context.Context, v *version) (uint64, bool, error) {
	db, err := r.dbOf(ctx, v.name, v.number)
	if err != nil {
		return 0, false, err
	}
	var low int64
	var n int
	err = db.QueryRowContext(ctx, `SELECT coalesce(min(position), 0), count(*) FROM strata_checkpoints WHERE projection = ANY ($1)`, partitionNames(v.name, v.partitions)).Scan(&low, &n)
	if isUndefinedTable(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return uint64(low), n == v.partitions, nil
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// partitionNames returns the checkpoint names of the partitions of a
// projection cut in n.
func partitionNames(name string, n int) []string {
	out := make([]string, max(n, 1))
	for k := range out {
		out[k] = projection.PartitionName(name, projection.Partition{Index: k, Count: len(out)})
	}
	return out
}

// Status reports projection name: its serving version across its
// partitions (the lowest position, failed if one is, paused if one is,
// active if one runs, the nodes running them) and the version building, if
// any, with its progress.
func (r *ReadSide) Status(ctx context.Context, name string, head uint64) (readmodels.Status, error) {
	vs, err := r.versions(ctx, r.db)
	if err != nil {
		return readmodels.Status{}, err
	}
	serving, building := current(vs, name)
	if serving == nil && building == nil {
		return readmodels.Status{}, fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
	}
	out := readmodels.Status{Name: name, Head: head, State: readmodels.StateBuilding}
	if building != nil {
		b, err := r.progress(ctx, building, head)
		if err != nil {
			return out, err
		}
		out.Building = &b
	}
	if serving == nil {
		out.Nodes = r.holders(ctx, building)
		return out, nil
	}
	out.Version, out.State = serving.number, projection.StateStarting
	db, err := r.dbOf(ctx, serving.name, serving.number)
	if err != nil {
		return out, err
	}
	now := time.Now()
	for k, pn := range partitionNames(name, serving.partitions) {
		st, err := projection.ReadStored(ctx, db, pn)
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
	out.Nodes = r.holders(ctx, serving)
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

// progress is a building version's progress: its lowest checkpoint, the
// head it follows, the rate this node has seen it move at, and the time
// left at that rate.
func (r *ReadSide) progress(ctx context.Context, v *version, head uint64) (readmodels.Building, error) {
	pos, _, err := r.reached(ctx, v)
	if err != nil {
		return readmodels.Building{}, err
	}
	b := readmodels.Building{Version: v.number, Position: pos, Until: max(head, v.until)}
	s := r.schemaOf(v.name, v.number)
	now := time.Now()
	r.mu.Lock()
	m, ok := r.marks[s]
	if !ok || pos < m.pos {
		r.marks[s] = progressMark{pos, now}
	} else if dt := now.Sub(m.at).Seconds(); dt > 0 && pos > m.pos {
		b.Rate = float64(pos-m.pos) / dt
	}
	r.mu.Unlock()
	if b.Rate > 0 && b.Until > b.Position {
		b.ETASeconds = float64(b.Until-b.Position) / b.Rate
	}
	return b, nil
}

// holders returns the nodes running v's partitions, sorted.
func (r *ReadSide) holders(ctx context.Context, v *version) []string {
	names := make([]string, 0, v.partitions)
	for k := range v.partitions {
		names = append(names, projection.PartitionName(fmt.Sprintf("%s/v%d", v.name, v.number), projection.Partition{Index: k, Count: v.partitions}))
	}
	rows, err := r.db.QueryContext(ctx, `SELECT DISTINCT holder FROM strata_leases
WHERE name = ANY ($1) AND holder IS NOT NULL AND expires_at > clock_timestamp() ORDER BY holder`, names)
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

// List reports every projection.
func (r *ReadSide) List(ctx context.Context, head uint64) ([]readmodels.Status, error) {
	vs, err := r.versions(ctx, r.db)
	if err != nil {
		return nil, err
	}
	out := []readmodels.Status{}
	var names []string
	for _, v := range vs {
		if (v.state == stateServing || v.state == stateBuilding) && !slices.Contains(names, v.name) {
			names = append(names, v.name)
		}
	}
	for _, n := range names {
		st, err := r.Status(ctx, n, head)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// servingDB returns the database of name's serving version.
func (r *ReadSide) servingDB(ctx context.Context, name string) (*sql.DB, *version, error) {
	vs, err := r.versions(ctx, r.db)
	if err != nil {
		return nil, nil, err
	}
	serving, building := current(vs, name)
	switch {
	case serving != nil:
	case building != nil:
		return nil, nil, fmt.Errorf("projection %s has no serving version yet (version %d is building)", name, building.number)
	default:
		return nil, nil, fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
	}
	db, err := r.dbOf(ctx, name, serving.number)
	return db, serving, err
}

// SetPaused pauses or resumes every partition of name's serving version
// (their runners, on whichever nodes, follow within their poll interval).
func (r *ReadSide) SetPaused(ctx context.Context, name string, paused bool) error {
	db, v, err := r.servingDB(ctx, name)
	if err != nil {
		return err
	}
	for _, pn := range partitionNames(name, v.partitions) {
		if err := projection.SetPaused(ctx, db, pn, paused); err != nil && !errors.Is(err, projection.ErrUnknownProjection) {
			return err
		}
	}
	return nil
}

// Skip moves every failed partition of name's serving version past the
// event it failed on.
func (r *ReadSide) Skip(ctx context.Context, name, reason string) error {
	db, v, err := r.servingDB(ctx, name)
	if err != nil {
		return err
	}
	skipped := 0
	for _, pn := range partitionNames(name, v.partitions) {
		err := projection.SkipFailed(ctx, db, pn, reason, time.Now())
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

// Query runs one read-only statement over the serving versions' read
// models (their schemas on the search path), in one snapshot with their
// checkpoints, if every serving version has applied pos; it reports
// whether they had, and the lowest position they reflect. A statement
// that names a table only a building version has fails with a
// *projection.BuildingError.
func (r *ReadSide) Query(ctx context.Context, pos uint64, query string, args []any, fn func(rows *sql.Rows) error) (bool, uint64, error) {
	vs, err := r.recentVersions(ctx)
	if err != nil {
		return false, 0, err
	}
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return false, 0, err
	}
	defer tx.Rollback()
	var path, reads []string
	var onlyBuilding []*version
	var read []any
	serving := 0
	for i := range vs {
		v := &vs[i]
		srv, building := current(vs, v.name)
		if v.state == stateBuilding && srv == nil && building == v {
			onlyBuilding = append(onlyBuilding, v)
		}
		if v.state != stateServing {
			continue
		}
		serving++
		s := pgx.Identifier{r.schemaOf(v.name, v.number)}.Sanitize()
		path = append(path, s)
		// A version switched in before its runners set their tables up
		// (the log was empty) has no checkpoint table yet: it reflects 0.
		ok, err := r.hasCheckpoints(ctx, tx, s)
		if err != nil {
			return false, 0, err
		}
		if !ok {
			reads = append(reads, `SELECT 0::bigint, 0, 1`)
			continue
		}
		read = append(read, partitionNames(v.name, v.partitions))
		reads = append(reads, fmt.Sprintf(`SELECT coalesce(min(position), 0), count(*)::int, %d FROM %s.strata_checkpoints WHERE projection = ANY ($%d)`, v.partitions, s, len(read)))
	}
	// Every serving version's checkpoints in one statement.
	var low uint64
	if serving > 0 {
		rows, err := tx.QueryContext(ctx, strings.Join(reads, " UNION ALL "), read...)
		if err != nil {
			return false, 0, err
		}
		first := true
		for rows.Next() {
			var p int64
			var n, want int
			if err := rows.Scan(&p, &n, &want); err != nil {
				rows.Close()
				return false, 0, err
			}
			if n < want {
				p = 0
			}
			if first || uint64(p) < low {
				low, first = uint64(p), false
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, 0, err
		}
		if low < pos {
			return false, low, nil
		}
	}
	path = append(path, pgx.Identifier{r.schema}.Sanitize())
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+strings.Join(path, ", ")+`; SET LOCAL statement_timeout = '30s'`); err != nil {
		return false, low, err
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		if isUndefinedTable(err) && len(onlyBuilding) > 0 {
			v := onlyBuilding[0]
			head, _ := r.src.Head(ctx)
			b, perr := r.progress(ctx, v, head)
			if perr == nil {
				return false, low, &projection.BuildingError{Version: projection.Version{Projection: v.name, Number: v.number, Position: b.Position, Until: b.Until, Rate: b.Rate}}
			}
		}
		return false, low, err
	}
	defer rows.Close()
	return true, low, fn(rows)
}

// versionsFresh is how long Query uses the versions it read last: a
// version switched in on another node is queried at most this late (the
// one it replaced stays a minute).
const versionsFresh = 250 * time.Millisecond

// recentVersions returns the versions, read again when older than
// versionsFresh or when this node changed them.
func (r *ReadSide) recentVersions(ctx context.Context) ([]version, error) {
	r.mu.Lock()
	vs, at := r.cached, r.cachedAt
	r.mu.Unlock()
	if !at.IsZero() && time.Since(at) < versionsFresh {
		return vs, nil
	}
	vs, err := r.versions(ctx, r.db)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cached, r.cachedAt = vs, time.Now()
	r.mu.Unlock()
	return vs, nil
}

// hasCheckpoints reports whether schema s (quoted) has its checkpoint
// table yet; once it has, it is not asked again.
func (r *ReadSide) hasCheckpoints(ctx context.Context, tx *sql.Tx, s string) (bool, error) {
	r.mu.Lock()
	ok := r.ready[s]
	r.mu.Unlock()
	if ok {
		return true, nil
	}
	if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, s+".strata_checkpoints").Scan(&ok); err != nil {
		return false, err
	}
	if ok {
		r.mu.Lock()
		r.ready[s] = true
		r.mu.Unlock()
	}
	return ok, nil
}
