package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stratadb/strata/store"
)

// ManagerOptions configure a Manager. The zero value is valid.
type ManagerOptions struct {
	// Runner configures the live runners (the Manager sets Until and Quiet).
	Runner Options
	// Replay configures builds (the Manager sets Until, Registry from
	// Runner.Registry when unset, and Progress).
	Replay ReplayOptions
	// SwitchLag: a new version takes over once its live runner is within
	// this many events of the log's head. Default 1,000.
	SwitchLag uint64
	// Grace is how long a retired version's file stays, for queries that
	// started on it. Default one minute.
	Grace time.Duration
	// Previous compiles the definition a serving version was built from,
	// so that it keeps applying events while a new definition builds (for
	// declarative projections: ParseSpec). Without it, a serving version of
	// another definition stays at its checkpoint until the switch; one of
	// the same definition always keeps running.
	Previous func(definition string) (Projection, error)
	// Rebuild builds a new version even if the definition did not change
	// (`strata projection rebuild`).
	Rebuild bool
	// Shadow compares the serving and the new version's tables at one
	// position before switching, and refuses the switch (ErrShadowMismatch,
	// with a readable diff) when they differ: for rebuilds that must not
	// change what the read model says.
	Shadow bool
	// ExitAfterSwitch makes Run return nil once a build has taken over.
	ExitAfterSwitch bool
	// Progress is told how a build goes: at every phase change, and about
	// once a second while it replays or catches up.
	Progress func(BuildStatus)
	// Logger receives hand-offs and failures. Default: discard.
	Logger *slog.Logger
}

// BuildPhase is where a build is.
type BuildPhase string

const (
	PhaseReplaying  BuildPhase = "replaying"   // parallel replay of history
	PhaseCatchingUp BuildPhase = "catching up" // live, until within SwitchLag of the head
	PhaseAligning   BuildPhase = "aligning"    // both versions brought to one position
	PhaseSwitched   BuildPhase = "switched"    // serving
)

// BuildStatus is a build's progress.
type BuildStatus struct {
	Projection string        `json:"projection"`
	Version    int           `json:"version"`
	Phase      BuildPhase    `json:"phase"`
	Position   uint64        `json:"position"`
	Head       uint64        `json:"head"`
	Rate       float64       `json:"events_per_second"`
	ETA        time.Duration `json:"eta_ns"`
	Elapsed    time.Duration `json:"elapsed_ns"`
}

// ErrShadowMismatch: the shadow check found the new version's tables
// differ from the serving version's at the same position; no switch.
var ErrShadowMismatch = errors.New("projection: shadow check: the new version differs from the serving one")

// Manager runs one projection through its versions: the serving version
// live, and, when the definition changed (or a rebuild is asked for), a new
// version that replays history in parallel into its own file while the
// serving one goes on, catches up live, and takes over in one catalog
// transaction. Queries see the old version until that moment, and the new
// one from then on; a projection with no serving version answers
// "building". Side effects stay quiet while a version builds.
type Manager struct {
	p    Projection
	cat  *Catalog
	src  store.Store
	opts ManagerOptions

	mu      sync.Mutex
	serving *liveVersion
	build   *BuildStatus
}

// liveVersion is a version with a runner applying events to it.
type liveVersion struct {
	v      Version
	db     *sql.DB
	r      *Runner
	cancel context.CancelFunc
	done   chan struct{} // closed when the runner's Run has returned runErr
	runErr error

	stopOnce sync.Once
	stopErr  error
}

// stop ends the runner and closes the database; stopping twice is safe
// (a failed hand-off stops the serving version, and Run stops it again),
// and so is stopping a runner that has ended by itself.
func (lv *liveVersion) stop() error {
	lv.stopOnce.Do(func() {
		lv.cancel()
		<-lv.done
		err := lv.runErr
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		lv.stopErr = errors.Join(err, lv.db.Close())
	})
	return lv.stopErr
}

// NewManager returns a manager of p's versions in cat, fed from src.
func NewManager(p Projection, cat *Catalog, src store.Store, opts ManagerOptions) *Manager {
	if opts.SwitchLag == 0 {
		opts.SwitchLag = 1000
	}
	if opts.Grace <= 0 {
		opts.Grace = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Replay.Registry == nil {
		opts.Replay.Registry = opts.Runner.Registry
	}
	return &Manager{p: p, cat: cat, src: src, opts: opts}
}

// Status returns the serving version's runner status (ok false when there
// is none) and the build in progress (nil when there is none).
func (m *Manager) Status() (serving Status, servingVersion Version, ok bool, build *BuildStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.build != nil {
		b := *m.build
		build = &b
	}
	if m.serving != nil {
		return m.serving.r.Status(), m.serving.v, true, build
	}
	return Status{}, Version{}, false, build
}

// Serving returns the runner of the serving version, for read-your-writes
// waits (nil while there is none).
func (m *Manager) Serving() *Runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.serving == nil {
		return nil
	}
	return m.serving.r
}

// Run keeps the projection served until ctx ends: it builds a first version
// if there is none, runs the serving one, and builds and switches to a new
// one when the definition differs from the serving version's (or
// ManagerOptions.Rebuild). It returns ctx's error, a build's error, or nil
// after a switch with ExitAfterSwitch.
func (m *Manager) Run(ctx context.Context) (err error) {
	defer func() {
		m.mu.Lock()
		lv := m.serving
		m.serving = nil
		m.mu.Unlock()
		if lv != nil {
			err = errors.Join(err, lv.stop())
		}
	}()
	name, def := m.p.Name(), definitionOf(m.p)
	if err := m.cat.DropRetired(ctx, m.opts.Grace); err != nil {
		m.opts.Logger.Warn("projection: cannot drop retired versions", "projection", name, "err", err)
	}
	serving, building, hasServing, hasBuilding, err := m.cat.Latest(ctx, name)
	if err != nil {
		return fmt.Errorf("projection %s: catalog: %w", name, err)
	}
	if hasServing {
		if err := m.runServing(ctx, serving); err != nil {
			return err
		}
	}
	// An interrupted build of the current definition resumes too.
	if !hasServing || serving.Definition != def || m.opts.Rebuild || (hasBuilding && building.Definition == def) {
		if !hasBuilding || building.Definition != def {
			if building, err = m.cat.Begin(ctx, name, def); err != nil {
				return fmt.Errorf("projection %s: new version: %w", name, err)
			}
		}
		if err := m.buildVersion(ctx, building); err != nil {
			return err
		}
		if m.opts.ExitAfterSwitch {
			return nil
		}
	}
	// Serve until ctx ends, dropping retired files once their grace is over.
	grace := time.NewTicker(m.opts.Grace)
	defer grace.Stop()
	m.mu.Lock()
	live := m.serving
	m.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-live.done:
			return fmt.Errorf("projection %s: serving runner: %w", name, live.runErr)
		case <-grace.C:
			if err := m.cat.DropRetired(ctx, m.opts.Grace); err != nil {
				m.opts.Logger.Warn("projection: cannot drop retired versions", "projection", name, "err", err)
			}
		}
	}
}

// runServing starts a runner on the serving version if its definition's
// code is at hand.
func (m *Manager) runServing(ctx context.Context, v Version) error {
	p := m.p
	if v.Definition != definitionOf(m.p) {
		if m.opts.Previous == nil {
			return nil // frozen at its checkpoint until the switch
		}
		var err error
		if p, err = m.opts.Previous(v.Definition); err != nil {
			m.opts.Logger.Warn("projection: cannot compile the serving version's definition; it stays at its checkpoint until the switch", "projection", v.Projection, "version", v.Number, "err", err)
			return nil
		}
	}
	lv, err := m.startRunner(ctx, v, p, Options{})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.serving = lv
	m.mu.Unlock()
	return nil
}

func (m *Manager) startRunner(ctx context.Context, v Version, p Projection, extra Options) (*liveVersion, error) {
	db, err := m.cat.Open(v)
	if err != nil {
		return nil, err
	}
	opts := m.opts.Runner
	opts.Until, opts.Quiet = extra.Until, extra.Quiet
	rctx, cancel := context.WithCancel(ctx)
	lv := &liveVersion{v: v, db: db, r: NewRunner(p, db, m.src, opts), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(lv.done)
		lv.runErr = lv.r.Run(rctx)
	}()
	return lv, nil
}

func (m *Manager) report(b BuildStatus, started time.Time) {
	b.Elapsed = time.Since(started)
	if b.Rate > 0 && b.Head > b.Position {
		b.ETA = time.Duration(float64(b.Head-b.Position) / b.Rate * float64(time.Second))
	}
	m.mu.Lock()
	m.build = &b
	m.mu.Unlock()
	_ = m.cat.Report(context.WithoutCancel(context.Background()), Version{Projection: b.Projection, Number: b.Version}, b.Position, b.Head, b.Rate)
	if m.opts.Progress != nil {
		m.opts.Progress(b)
	}
}

// buildVersion replays history into v, catches it up live, brings it and
// the serving version to one position, and switches.
func (m *Manager) buildVersion(ctx context.Context, v Version) error {
	name := v.Projection
	started := time.Now()
	status := BuildStatus{Projection: name, Version: v.Number, Phase: PhaseReplaying}
	defer func() {
		m.mu.Lock()
		m.build = nil
		m.mu.Unlock()
	}()

	// 1. Parallel replay of history, quiet by construction.
	db, err := m.cat.Open(v)
	if err != nil {
		return err
	}
	ropts := m.opts.Replay
	var last time.Time
	ropts.Progress = func(p ReplayProgress) {
		if p.Position != p.Until && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		status.Position, status.Head = p.Position, p.Until
		if secs := time.Since(started).Seconds(); secs > 0 {
			status.Rate = float64(p.Position-p.From) / secs
		}
		m.report(status, started)
	}
	m.report(status, started)
	pos, err := Replay(ctx, m.p, db, m.src, ropts)
	db.Close()
	if err != nil {
		return err
	}

	// 2. Live, quiet, until close to the head.
	status.Phase = PhaseCatchingUp
	status.Position = pos
	m.report(status, started)
	lv, err := m.startRunner(ctx, v, m.p, Options{Quiet: true})
	if err != nil {
		return err
	}
	caughtUp := func() (bool, error) {
		head, err := m.src.Head(ctx)
		if err != nil {
			return false, err
		}
		status.Position, status.Head = lv.r.Position(), head
		return status.Head <= status.Position+m.opts.SwitchLag, nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		ok, err := caughtUp()
		if err != nil {
			return errors.Join(err, lv.stop())
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), lv.stop())
		case <-lv.done:
			err := lv.stop()
			if err == nil {
				err = errors.New("its runner stopped")
			}
			return fmt.Errorf("projection %s version %d: catching up: %w", name, v.Number, err)
		case <-lv.r.Changed():
		case <-tick.C:
			m.report(status, started)
		}
	}
	if st := lv.r.Status(); st.State == StateFailed {
		return errors.Join(fmt.Errorf("projection %s version %d failed at %d: %s", name, v.Number, st.Failure.Position, st.Failure.Err), lv.stop())
	}

	// 3. Align: stop both runners, bring both to the higher position.
	status.Phase = PhaseAligning
	m.report(status, started)
	if err := lv.stop(); err != nil {
		return err
	}
	m.mu.Lock()
	old := m.serving
	m.mu.Unlock()
	target := lv.r.Position()
	if old != nil {
		if err := old.stop(); err != nil {
			return err
		}
		if p := old.r.Position(); p > target {
			target = p
		} else if p < target {
			// The serving version catches up to the new one (and sends
			// the effects of those events: it is still the serving one).
			if err := m.runTo(ctx, old.v, old.r.p, target, false); err != nil {
				return err
			}
		}
	}
	if lv.r.Position() < target {
		if err := m.runTo(ctx, v, m.p, target, true); err != nil {
			return err
		}
	}
	if m.opts.Shadow {
		serving, _, hasServing, _, err := m.cat.Latest(ctx, name)
		if err != nil {
			return err
		}
		if hasServing {
			if diff, err := compareVersions(ctx, m.cat, serving, v); err != nil {
				return err
			} else if diff != "" {
				// The serving version goes on; the build is abandoned.
				err := errors.Join(m.restartOld(ctx, old), m.cat.Abandon(ctx, v))
				return errors.Join(fmt.Errorf("%w at position %d:\n%s", ErrShadowMismatch, target, diff), err)
			}
		}
	}

	// 4. Switch, and run the new version live (no longer quiet) from the
	// aligned position: the old one's effects went up to it.
	if err := m.cat.Switch(ctx, name, v.Number); err != nil {
		return errors.Join(fmt.Errorf("projection %s: switch to version %d: %w", name, v.Number, err), m.restartOld(ctx, old))
	}
	m.opts.Logger.Info("projection: switched", "projection", name, "version", v.Number, "position", target)
	v.State = VersionServing
	nlv, err := m.startRunner(ctx, v, m.p, Options{})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.serving = nlv
	m.mu.Unlock()
	// Return once the new runner has stored its state, so that tools in
	// other processes (pause, status) find the serving version's row.
	for nlv.r.State() == StateStarting {
		ch := nlv.r.Changed()
		if nlv.r.State() != StateStarting {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	status.Phase, status.Position = PhaseSwitched, target
	m.report(status, started)
	return nil
}

// runTo runs version v of p until it has applied target. A runner that
// fails or is paused on the way ends it with an error instead of waiting
// for an operator in the middle of a hand-off.
func (m *Manager) runTo(ctx context.Context, v Version, p Projection, target uint64, quiet bool) error {
	lv, err := m.startRunner(ctx, v, p, Options{Until: target, Quiet: quiet})
	if err != nil {
		return err
	}
	for {
		ch := lv.r.Changed()
		st := lv.r.Status()
		if st.State == StateFailed || st.State == StatePaused {
			err := fmt.Errorf("projection %s version %d is %s at %d while being brought to %d", v.Projection, v.Number, st.State, st.Position, target)
			if st.Failure != nil {
				err = fmt.Errorf("%w: event %d: %s", err, st.Failure.Position, st.Failure.Err)
			}
			return errors.Join(err, lv.stop())
		}
		select {
		case <-lv.done:
			err := lv.stop()
			if err == nil && lv.r.Position() != target {
				err = fmt.Errorf("stopped at %d, not %d (state %s)", lv.r.Position(), target, lv.r.State())
			}
			if err != nil {
				return fmt.Errorf("projection %s version %d: bringing it to %d: %w", v.Projection, v.Number, target, err)
			}
			return nil
		case <-ch:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), lv.stop())
		}
	}
}

// restartOld resumes the serving version after a refused switch.
func (m *Manager) restartOld(ctx context.Context, old *liveVersion) error {
	if old == nil {
		return nil
	}
	lv, err := m.startRunner(ctx, old.v, old.r.p, Options{})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.serving = lv
	m.mu.Unlock()
	return nil
}
