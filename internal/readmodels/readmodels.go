// Package readmodels is what the command line and the server share about
// the read models beside a log: the applied declarative projections
// (DATA/projections), their versions' status, running their managers, and
// queries that wait for a position (read-your-writes).
package readmodels

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/internal/atomicfile"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// CompileDefinition compiles a serving version's stored definition, so
// that it keeps following the log while a new definition builds: a
// declarative projection's Definition is its Spec as JSON.
func CompileDefinition(def string) (projection.Projection, error) {
	var s projection.Spec
	if err := json.Unmarshal([]byte(def), &s); err != nil {
		return nil, fmt.Errorf("stored definition: %w", err)
	}
	return s.Compile()
}

// NewManager returns a Manager of p whose events are upcast by reg. A
// serving version of an earlier definition keeps following the log while
// the new one builds, unless it is paused or failed: the hand-over would
// wait for an operator to bring it forward, so it stays at its checkpoint
// until the switch instead.
func NewManager(ctx context.Context, p projection.Projection, cat *projection.Catalog, s store.Store, reg *event.Registry, opts projection.ManagerOptions) (*projection.Manager, error) {
	opts.Runner.Registry = reg
	opts.Previous = CompileDefinition
	serving, _, hasServing, _, err := cat.Latest(ctx, p.Name())
	if err != nil {
		return nil, err
	}
	if hasServing {
		st, err := StoredOf(ctx, cat, serving)
		if err != nil {
			return nil, err
		}
		if st.State == projection.StatePaused || st.State == projection.StateFailed {
			opts.Previous = nil
		}
	}
	return projection.NewManager(p, cat, s, opts), nil
}

// registry is the examples' event registry, for upcasting their events.
func Registry(s store.Store) (*event.Registry, error) {
	c, err := examples.New(s, nil)
	if err != nil {
		return nil, err
	}
	return c.Registry, nil
}

// heartbeatRecheck is how long ActiveElsewhere waits to see a fresh
// heartbeat beat again: more than two of a runner's poll intervals.
const heartbeatRecheck = 1200 * time.Millisecond

// ActiveElsewhere reports whether a runner in another process is applying
// version v (strata projection run): its heartbeat is fresh and still
// beats. A process that has just ended leaves a heartbeat that looks fresh
// for a few seconds, so a fresh one is read again a little later.
func ActiveElsewhere(ctx context.Context, cat *projection.Catalog, v projection.Version) (bool, error) {
	st, err := StoredOf(ctx, cat, v)
	if err != nil || !st.Active(time.Now()) {
		return false, nil // no state to read: no runner either
	}
	select {
	case <-time.After(heartbeatRecheck):
	case <-ctx.Done():
		return false, ctx.Err()
	}
	again, err := StoredOf(ctx, cat, v)
	if err != nil {
		return false, err
	}
	return again.Heartbeat.After(st.Heartbeat), nil
}

func ErrRunningElsewhere(v projection.Version, what string) error {
	return fmt.Errorf("projection %s (version %d) is being run by another process: stop `strata projection run` first, then %s", v.Projection, v.Number, what)
}

// StoredOf reads the runner state stored in version v's database. A version
// no runner has followed the log with yet has no state: it counts as
// stopped at its checkpoint.
func StoredOf(ctx context.Context, cat *projection.Catalog, v projection.Version) (projection.Stored, error) {
	db, err := projection.OpenSQLiteQuery(cat.Path(v))
	if err != nil {
		return projection.Stored{}, err
	}
	defer db.Close()
	st, err := projection.ReadStored(ctx, db, v.Projection)
	if !errors.Is(err, projection.ErrUnknownProjection) {
		return st, err
	}
	st = projection.Stored{Name: v.Projection, State: projection.StateStopped}
	err = db.QueryRowContext(ctx, `SELECT position FROM strata_checkpoints WHERE projection = ?`, v.Projection).Scan(&st.Position)
	if errors.Is(err, sql.ErrNoRows) || err != nil && strings.Contains(err.Error(), "no such table") {
		err = nil
	}
	return st, err
}

type Status struct {
	Name       string              `json:"name"`
	Version    int                 `json:"version,omitempty"` // the serving one
	State      projection.State    `json:"state"`
	Active     bool                `json:"active"`
	Position   uint64              `json:"position"`
	Head       uint64              `json:"head"`
	LagEvents  uint64              `json:"lag_events"`
	LagSeconds float64             `json:"lag_seconds"`
	Failure    *projection.Failure `json:"failure,omitempty"`
	Building   *Building           `json:"building,omitempty"`
	// Nodes are the nodes that run its partitions now (on a cluster).
	Nodes []string `json:"nodes,omitempty"`
}

// Building is a version in the making, as its builder last reported.
type Building struct {
	Version    int     `json:"version"`
	Position   uint64  `json:"position"`
	Until      uint64  `json:"until"`
	Rate       float64 `json:"events_per_second"`
	ETASeconds float64 `json:"eta_seconds"`
}

// StateBuilding is the state of a projection that has no serving version.
const StateBuilding projection.State = "building"

func BuildingOf(v projection.Version) *Building {
	b := &Building{Version: v.Number, Position: v.Position, Until: v.Until, Rate: v.Rate}
	if v.Rate > 0 && v.Until > v.Position {
		b.ETASeconds = float64(v.Until-v.Position) / v.Rate
	}
	return b
}

// ReadStatus is a projection's serving version's stored state with its lag
// behind head, in events and in seconds (how long the oldest unapplied
// event has waited), and the version being built, if any.
func ReadStatus(ctx context.Context, cat *projection.Catalog, s store.Store, name string, head uint64) (Status, error) {
	out := Status{Name: name, Head: head}
	serving, building, hasServing, hasBuilding, err := cat.Latest(ctx, name)
	if err != nil {
		return out, err
	}
	switch {
	case hasServing:
		st, err := StoredOf(ctx, cat, serving)
		if err != nil {
			return out, err
		}
		out.Version, out.State, out.Active, out.Position, out.Failure = serving.Number, st.State, st.Active(time.Now()), st.Position, st.Failure
	case hasBuilding:
		out.State = StateBuilding
	default:
		return out, fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
	}
	if hasBuilding {
		out.Building = BuildingOf(building)
	}
	if head > out.Position {
		out.LagEvents = head - out.Position
		for r, err := range s.ReadAll(ctx, store.ReadAllOptions{After: out.Position, Limit: 1}) {
			if err == nil {
				out.LagSeconds = time.Since(r.Time).Seconds()
			}
		}
	}
	return out, nil
}

// QueryAtLeast runs fn if every serving version has applied pos, and
// reports whether they had and the lowest position they reflect.
func QueryAtLeast(ctx context.Context, cat *projection.Catalog, pos uint64, fn func(q *projection.QueryConn, reflects uint64) error) (bool, uint64, error) {
	q, err := cat.OpenQuery(ctx)
	if err != nil {
		return false, 0, err
	}
	defer q.Close()
	// One read transaction: the checkpoints read first are those of the
	// snapshot the query reads.
	if _, err := q.ExecContext(ctx, "BEGIN"); err != nil {
		return false, 0, err
	}
	defer q.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	names := make([]string, 0, len(q.Serving))
	for n := range q.Serving {
		names = append(names, n)
	}
	sort.Strings(names)
	var low uint64
	var behind []string
	for i, n := range names {
		p, err := q.Reflects(ctx, n)
		if err != nil {
			return false, 0, err
		}
		if i == 0 || p < low {
			low = p
		}
		if p < pos {
			behind = append(behind, n)
		}
	}
	if len(behind) > 0 {
		for _, n := range behind {
			st, err := StoredOf(ctx, cat, q.Serving[n])
			if err == nil && st.State == projection.StateFailed && st.Position < pos {
				return false, low, fmt.Errorf("projection %s failed at position %d before reaching %d", n, st.Failure.Position, pos)
			}
		}
		return false, low, nil
	}
	return true, low, fn(q, low)
}

// Specs loads every applied declarative projection from dir
// (DATA/projections/NAME.yaml); none when dir does not exist.
func Specs(dir string) (map[string]*projection.Declarative, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]*projection.Declarative{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		p, err := projection.ParseSpec(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out[p.Name()] = p
	}
	return out, nil
}

// WriteSpec stores an applied projection's source as dir/NAME.yaml
// (atomically: a crash leaves the previous one).
func WriteSpec(dir, name string, src []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, name+".yaml"), src)
}

// RunOptions tunes Run and Supervise.
type RunOptions struct {
	Logger   *slog.Logger
	Progress func(projection.BuildStatus) // a build's progress (nil: none)
	// SpecsDir is where Supervisor.Apply stores the projections it is given
	// (DATA/projections).
	SpecsDir string
}

// Run runs a Manager per projection until ctx ends (nil) or one of them
// fails (its error). It refuses to run a projection another process runs.
func Run(ctx context.Context, cat *projection.Catalog, s store.Store, ps []projection.Projection, opts RunOptions) error {
	for _, p := range ps {
		serving, _, hasServing, _, err := cat.Latest(ctx, p.Name())
		if err != nil {
			return err
		}
		if !hasServing {
			continue
		}
		if busy, err := ActiveElsewhere(ctx, cat, serving); err != nil {
			return err
		} else if busy {
			return ErrRunningElsewhere(serving, "run it here")
		}
	}
	reg, err := Registry(s)
	if err != nil {
		return err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		m, err := NewManager(ctx, p, cat, s, reg, projection.ManagerOptions{
			Runner:   projection.Options{Logger: opts.Logger},
			Progress: opts.Progress,
			Logger:   opts.Logger,
		})
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		wg.Go(func() {
			if errs[i] = m.Run(runCtx); runCtx.Err() == nil {
				cancel() // one failed: stop the others
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// Summary is a projection's serving version and the one building, if any.
type Summary struct {
	Name     string
	Serving  *projection.Version
	Building *projection.Version
}

// List is every projection with a serving or building version, by name.
func List(ctx context.Context, cat *projection.Catalog) ([]Summary, error) {
	vs, err := cat.Versions(ctx, "")
	if err != nil {
		return nil, err
	}
	byName := map[string]*Summary{}
	var names []string
	for i, v := range vs {
		if v.State != projection.VersionServing && v.State != projection.VersionBuilding {
			continue
		}
		l := byName[v.Projection]
		if l == nil {
			l = &Summary{Name: v.Projection}
			byName[v.Projection] = l
			names = append(names, v.Projection)
		}
		if v.State == projection.VersionServing {
			l.Serving = &vs[i]
		} else {
			l.Building = &vs[i]
		}
	}
	sort.Strings(names)
	out := make([]Summary, len(names))
	for i, n := range names {
		out[i] = *byName[n]
	}
	return out, nil
}

// Supervisor runs a Manager per projection, as Run does, and can restart
// one to rebuild it while the others go on (strata serve's rebuilds).
type Supervisor struct {
	cat     *projection.Catalog
	st      store.Store
	reg     *event.Registry
	opts    RunOptions
	ctx     context.Context
	wg      sync.WaitGroup
	mu      sync.Mutex
	runs    map[string]*supervised
	stopped bool
}

type supervised struct {
	p      projection.Projection
	cancel context.CancelFunc
	done   chan struct{}
}

// Supervise starts a Manager for each of ps, until ctx ends (then Wait).
// It refuses to run a projection another process runs.
func Supervise(ctx context.Context, cat *projection.Catalog, s store.Store, ps []projection.Projection, opts RunOptions) (*Supervisor, error) {
	for _, p := range ps {
		serving, _, hasServing, _, err := cat.Latest(ctx, p.Name())
		if err != nil {
			return nil, err
		}
		if !hasServing {
			continue
		}
		if busy, err := ActiveElsewhere(ctx, cat, serving); err != nil {
			return nil, err
		} else if busy {
			return nil, ErrRunningElsewhere(serving, "start the server")
		}
	}
	reg, err := Registry(s)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sv := &Supervisor{cat: cat, st: s, reg: reg, opts: opts, ctx: ctx, runs: map[string]*supervised{}}
	for _, p := range ps {
		if err := sv.start(p, false); err != nil {
			return nil, err
		}
	}
	return sv, nil
}

// start runs p's Manager (building a new version first when rebuild).
func (sv *Supervisor) start(p projection.Projection, rebuild bool) error {
	if sv.stopped {
		return fmt.Errorf("readmodels: the server is stopping: %w", context.Canceled)
	}
	m, err := NewManager(sv.ctx, p, sv.cat, sv.st, sv.reg, projection.ManagerOptions{
		Runner:   projection.Options{Logger: sv.opts.Logger},
		Progress: sv.opts.Progress,
		Logger:   sv.opts.Logger,
		Rebuild:  rebuild,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(sv.ctx)
	r := &supervised{p: p, cancel: cancel, done: make(chan struct{})}
	sv.runs[p.Name()] = r
	sv.wg.Go(func() {
		defer close(r.done)
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			// Its state (failed, with the event) says what went wrong; the
			// other projections go on.
			sv.opts.Logger.Error("projection stopped", "projection", p.Name(), "err", err)
		}
	})
	return nil
}

// ErrNotSupervised is returned by Rebuild for a projection the supervisor
// does not run.
var ErrNotSupervised = errors.New("readmodels: projection not run here (apply it before the server starts)")

// Rebuild stops the projection's Manager and starts one that builds a new
// version beside the serving one (which keeps answering queries) and
// switches to it once caught up. It returns once the build has started:
// its progress is in the projection's status.
func (sv *Supervisor) Rebuild(ctx context.Context, name string) error {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	r, ok := sv.runs[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotSupervised, name)
	}
	serving, _, hasServing, _, err := sv.cat.Latest(ctx, name)
	if err != nil {
		return err
	}
	if hasServing {
		// The hand-over brings the serving version to the new one's
		// position: a paused one would never get there.
		if st, err := StoredOf(ctx, sv.cat, serving); err != nil {
			return err
		} else if st.State == projection.StatePaused {
			return fmt.Errorf("%w: projection %s (version %d) is paused: resume it first", ErrPaused, name, serving.Number)
		}
	}
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p := r.p
	if d, ok := p.(projection.Definer); ok {
		// A projection of its own for the new Manager, compiled again from
		// its definition: nothing of the stopped one's is shared.
		if fresh, err := CompileDefinition(d.Definition()); err == nil {
			p = fresh
		}
	}
	return sv.start(p, true)
}

// Apply stores a declarative projection (src is its YAML) and runs it: a
// new one builds its first version, a changed one builds a new version
// beside the serving one (which keeps answering queries) and switches to
// it once caught up, an unchanged one goes on as it was. It returns once
// the build has started.
func (sv *Supervisor) Apply(ctx context.Context, p *projection.Declarative, src []byte) error {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.opts.SpecsDir == "" {
		return errors.New("readmodels: the supervisor has no directory to store projections in")
	}
	name := p.Name()
	if err := WriteSpec(sv.opts.SpecsDir, name, src); err != nil {
		return err
	}
	r, running := sv.runs[name]
	if running {
		if d, ok := r.p.(projection.Definer); ok && d.Definition() == p.Definition() {
			return nil // unchanged: it goes on
		}
	}
	if running {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return sv.start(p, false)
}

// ErrPaused is returned by Rebuild for a paused projection.
var ErrPaused = errors.New("readmodels: paused")

// Wait waits until the context given to Supervise ends and every Manager
// has stopped. (Waiting on the managers alone would return in the moment
// between a rebuild's stopping one and starting the next, and a start
// after that would escape the wait.)
func (sv *Supervisor) Wait() {
	<-sv.ctx.Done()
	sv.mu.Lock()
	sv.stopped = true // no start from here on
	sv.mu.Unlock()
	sv.wg.Wait()
}

// ServingDB opens the serving version of name, for steering its runner
// (projection.SetPaused, projection.SkipFailed): the runner follows what
// its database says.
func ServingDB(ctx context.Context, cat *projection.Catalog, name string) (*sql.DB, error) {
	serving, building, hasServing, hasBuilding, err := cat.Latest(ctx, name)
	if err != nil {
		return nil, err
	}
	if !hasServing {
		if hasBuilding {
			return nil, fmt.Errorf("projection %s has no serving version yet (version %d is building)", name, building.Number)
		}
		return nil, fmt.Errorf("%w: %q", projection.ErrUnknownProjection, name)
	}
	return cat.Open(serving)
}
