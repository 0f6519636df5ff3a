package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// Read models live beside the log: DATA/readmodels/ is a projection.Catalog
// (catalog.db, and NAME/vN.db for each version of each projection), and
// DATA/projections/NAME.yaml the applied declarative projections.
func (a *app) readModelsDir() string { return filepath.Join(a.dataDir, "readmodels") }
func (a *app) specsDir() string      { return filepath.Join(a.dataDir, "projections") }

// specs loads every applied projection.
func (a *app) specs() (map[string]*projection.Declarative, error) {
	return readmodels.Specs(a.specsDir())
}

// appliedSpec returns the applied projection name.
func (a *app) appliedSpec(name string) (*projection.Declarative, error) {
	specs, err := a.specs()
	if err != nil {
		return nil, err
	}
	p, ok := specs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (apply it first: strata projection apply FILE.yaml)", projection.ErrUnknownProjection, name)
	}
	return p, nil
}

// withReadModels opens the catalog of read models. Commands that only look
// at them (mustExist) fail when nothing was ever applied instead of
// creating an empty catalog.
func (a *app) withReadModels(mustExist bool, fn func(cat *projection.Catalog) error) error {
	if _, err := os.Stat(a.dataDir); err != nil {
		return fmt.Errorf("no log at %s (set --data or %s)", a.dataDir, dataEnv)
	}
	if mustExist {
		if _, err := os.Stat(filepath.Join(a.readModelsDir(), "catalog.db")); errors.Is(err, fs.ErrNotExist) {
			msg := fmt.Sprintf("no read models at %s (strata projection apply FILE.yaml)", a.readModelsDir())
			if _, err := os.Stat(filepath.Join(a.dataDir, "readmodels.db")); err == nil {
				msg += "; readmodels.db beside it is the former single-file layout: apply the projections again"
			}
			return errors.New(msg)
		}
	}
	cat, err := projection.OpenCatalog(a.readModelsDir())
	if err != nil {
		return err
	}
	defer cat.Close()
	return fn(cat)
}

// servingDB opens the serving version of name for the commands that steer
// its runner.
func servingDB(ctx context.Context, cat *projection.Catalog, name string) (*sql.DB, error) {
	return readmodels.ServingDB(ctx, cat, name)
}

func newProjectionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projection",
		Short: "Manage read models: apply a YAML projection, rebuild, list, status, pause, resume, skip, run",
		Long: `Projections turn the log into SQL tables (SQLite) in DATA/readmodels/. A
declarative projection is a YAML file: the tables' DDL and one SQL statement
per event type (see examples/order_summary.yaml). Each batch's rows commit
together with the projection's checkpoint, so a crash never applies an event
twice or loses one.

Every version of a projection has a database file of its own
(DATA/readmodels/NAME/vN.db); DATA/readmodels/catalog.db records which one
serves queries. Applying a changed definition, or a rebuild, builds a new
version beside the serving one (a parallel replay of the log, then live
catch-up) and switches queries to it in one step; until a projection's first
version is built, queries on it answer with its build progress.`,
		Example: `  strata projection apply examples/order_summary.yaml
  strata projection status order_summary
  strata projection rebuild order_summary --shadow
  strata projection run`,
	}
	cmd.AddCommand(newProjectionApplyCmd(a), newProjectionRebuildCmd(a), newProjectionListCmd(a), newProjectionStatusCmd(a),
		newProjectionPauseCmd(a, true), newProjectionPauseCmd(a, false), newProjectionSkipCmd(a), newProjectionRunCmd(a))
	return cmd
}

func newProjectionApplyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "apply FILE.yaml",
		Short: "Add or change a declarative projection and build it up to the log's head",
		Long: `Store the projection (DATA/projections/NAME.yaml) and build it up to the log's
head as it is when the command starts, then print its status. A changed
definition of an applied projection builds a new version beside the serving
one, which keeps answering queries until the new one takes over.`,
		Example: "  strata projection apply examples/account_balances.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := projection.ParseSpec(src)
			if err != nil {
				return err
			}
			ctx, name, def := cmd.Context(), p.Name(), p.Definition()
			return a.withFollower(func(s store.Store) error {
				return a.withReadModels(false, func(cat *projection.Catalog) error {
					head, err := s.Head(ctx)
					if err != nil {
						return err
					}
					printStatus := func(runErr error) error {
						st, err := readmodels.ReadStatus(context.WithoutCancel(ctx), cat, s, name, head)
						if err == nil {
							err = writeJSON(cmd.OutOrStdout(), st)
						}
						return errors.Join(runErr, err)
					}
					serving, _, hasServing, _, err := cat.Latest(ctx, name)
					if err != nil {
						return err
					}
					if hasServing {
						busy, err := readmodels.ActiveElsewhere(ctx, cat, serving)
						if err != nil {
							return err
						}
						if busy && serving.Definition != def {
							return readmodels.ErrRunningElsewhere(serving, "apply the changed definition")
						}
						if busy {
							// Unchanged, and another process applies it: wait
							// for it there, rather than race it here.
							if err := writeSpec(a.specsDir(), name, src); err != nil {
								return err
							}
							if done, err := waitElsewhere(ctx, cat, serving, head); done || err != nil {
								return printStatus(err)
							}
						}
					}
					if err := writeSpec(a.specsDir(), name, src); err != nil {
						return err
					}
					reg, err := readmodels.Registry(s)
					if err != nil {
						return err
					}
					m, err := readmodels.NewManager(ctx, p, cat, s, reg, projection.ManagerOptions{})
					if err != nil {
						return err
					}
					runErr := serveUntil(ctx, m, func(v projection.Version) bool { return v.Definition == def }, head)
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted before %s served this definition up to position %d (apply again, or run it, to go on: a build resumes where it stopped)", name, head)
					}
					return printStatus(runErr)
				})
			})
		}),
	}
}

func writeSpec(dir, name string, src []byte) error { return readmodels.WriteSpec(dir, name, src) }

// waitElsewhere waits while another process's runner brings version v to
// head. It reports false when that runner stops beating before.
func waitElsewhere(ctx context.Context, cat *projection.Catalog, v projection.Version, head uint64) (bool, error) {
	for {
		st, err := readmodels.StoredOf(ctx, cat, v)
		if err != nil {
			return false, err
		}
		switch {
		case st.Position >= head:
			return true, nil
		case st.State == projection.StateFailed:
			return true, fmt.Errorf("projection %s failed before position %d", v.Projection, head)
		case !st.Active(time.Now()):
			return false, nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// serveUntil runs m until its serving version is one that ready accepts,
// whose runner has recorded its state and applied head; then it stops m.
// It returns m's error or the runner's failure.
func serveUntil(ctx context.Context, m *projection.Manager, ready func(projection.Version) bool, head uint64) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan struct{})
	var runErr error
	go func() {
		defer close(ended)
		runErr = m.Run(runCtx)
	}()
	waitCtx, stopWait := context.WithCancel(runCtx)
	go func() {
		select {
		case <-ended:
			stopWait()
		case <-waitCtx.Done():
		}
	}()
	waitErr := waitServing(waitCtx, m, ready, head)
	stopWait()
	cancel()
	<-ended
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case runErr != nil && !errors.Is(runErr, context.Canceled):
		return runErr
	case waitErr != nil && errors.Is(waitErr, context.Canceled):
		return errors.New("projection: the manager stopped before serving")
	}
	return waitErr
}

// waitServing waits until m serves a version ready accepts, its runner has
// stored its state (so that pause, resume and status find it), and it has
// applied head. A runner that is paused or fails before is an error.
func waitServing(ctx context.Context, m *projection.Manager, ready func(projection.Version) bool, head uint64) error {
	for {
		// The runner is the version's when the version is the same before
		// and after it is read.
		_, v, ok, _ := m.Status()
		r := m.Serving()
		_, again, okAgain, _ := m.Status()
		if ok && okAgain && r != nil && v.Number == again.Number && ready(v) {
			return waitRunner(ctx, r, head)
		}
		select {
		case <-time.After(20 * time.Millisecond): // polling the manager's status
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func waitRunner(ctx context.Context, r *projection.Runner, head uint64) error {
	for {
		changed := r.Changed()
		st := r.Status()
		switch {
		case st.State == projection.StateStarting: // its state is not stored yet
		case st.Position >= head:
			return nil
		case st.State == projection.StateFailed && st.Failure != nil:
			return fmt.Errorf("projection %s failed at position %d, before %d: %s", st.Name, st.Failure.Position, head, st.Failure.Err)
		case st.State == projection.StatePaused:
			return fmt.Errorf("projection %s is paused at position %d, before %d (strata projection resume %s)", st.Name, st.Position, head, st.Name)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func newProjectionRebuildCmd(a *app) *cobra.Command {
	var shadow, noProgress bool
	var workers int
	cmd := &cobra.Command{
		Use:   "rebuild NAME",
		Short: "Build a new version of a projection beside the serving one and switch to it",
		Long: `Replay the log into a new version of an applied projection (its own database
file, in parallel partitions), catch it up live, and switch queries to it in
one step; the serving version answers queries until then and is retired
after. With --shadow, both versions are first brought to one position and
compared: if their tables differ, the new version is abandoned and the command
fails with the difference.

Progress shows as a bar on a terminal, otherwise (or with --no-progress) as a
line about every second. The rebuild runs the serving version itself
meanwhile: stop ` + "`strata projection run`" + ` first (it refuses while a runner is at
work, and while the projection is paused). An interrupted rebuild resumes
where its replay stopped.`,
		Example: `  strata projection rebuild order_summary
  strata projection rebuild account_balances --shadow --workers 4 --no-progress`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if workers < 0 {
				return usagef("--workers must be at least 1 (0: one per CPU)")
			}
			p, err := a.appliedSpec(args[0])
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), p.Name()
			return a.withFollower(func(s store.Store) error {
				return a.withReadModels(false, func(cat *projection.Catalog) error {
					serving, _, hasServing, _, err := cat.Latest(ctx, name)
					if err != nil {
						return err
					}
					if hasServing {
						busy, err := readmodels.ActiveElsewhere(ctx, cat, serving)
						if err != nil {
							return err
						}
						if busy {
							return readmodels.ErrRunningElsewhere(serving, "rebuild")
						}
						// The hand-over brings the serving version to the new
						// one's position: a paused one would never get there.
						if st, err := readmodels.StoredOf(ctx, cat, serving); err != nil {
							return err
						} else if st.State == projection.StatePaused {
							return fmt.Errorf("projection %s (version %d) is paused: resume it first (strata projection resume %s)", name, serving.Number, name)
						}
					}
					head, err := s.Head(ctx)
					if err != nil {
						return err
					}
					reg, err := readmodels.Registry(s)
					if err != nil {
						return err
					}
					out := cmd.OutOrStdout()
					var prog buildProgress = newProgressLines(out, time.Second)
					if !noProgress && isTerminal(out) {
						prog = newProgressBar(out)
					}
					started := time.Now()
					m, err := readmodels.NewManager(ctx, p, cat, s, reg, projection.ManagerOptions{
						Rebuild:  true,
						Shadow:   shadow,
						Replay:   projection.ReplayOptions{Workers: workers},
						Progress: prog.report,
					})
					if err != nil {
						return err
					}
					// The Manager runs on after the switch until the new
					// version's runner has taken over (recorded its state) and
					// reached the head: then it is ready for pause, status, run.
					err = serveUntil(ctx, m, func(v projection.Version) bool { return v.Number > serving.Number }, head)
					prog.finish(err)
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted: rebuild again to go on (the build resumes where it stopped)")
					}
					if err != nil {
						return err
					}
					now, _, _, _, err := cat.Latest(ctx, name)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s: version %d serves, built up to position %d in %s", name, now.Number, head, time.Since(started).Round(time.Millisecond))
					if hasServing {
						fmt.Fprintf(out, "; version %d retired", serving.Number)
					}
					fmt.Fprintln(out)
					return nil
				})
			})
		}),
	}
	cmd.Flags().BoolVar(&shadow, "shadow", false, "compare the new version's tables with the serving one's before switching; refuse on a difference")
	cmd.Flags().IntVar(&workers, "workers", 0, "replay partitions, each applied by its own goroutine (default: one per CPU)")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "print progress lines instead of a progress bar")
	return cmd
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// buildProgress shows a Manager's builds.
type buildProgress interface {
	report(projection.BuildStatus)
	finish(err error)
}

// progressLines prints a line per build at every change of phase, when a
// phase reaches its target, and at most once per interval otherwise.
type progressLines struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	last  map[string]progressMark
}

type progressMark struct {
	at       time.Time
	version  int
	phase    projection.BuildPhase
	position uint64
}

func newProgressLines(w io.Writer, every time.Duration) *progressLines {
	return &progressLines{w: w, every: every, last: map[string]progressMark{}}
}

func (p *progressLines) report(b projection.BuildStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.last[b.Projection]
	reached := b.Head > 0 && b.Position >= b.Head && b.Position != last.position // a phase's end
	if last.version == b.Version && last.phase == b.Phase && !reached && time.Since(last.at) < p.every {
		return
	}
	p.last[b.Projection] = progressMark{at: time.Now(), version: b.Version, phase: b.Phase, position: b.Position}
	fmt.Fprintln(p.w, formatBuild(b))
}

func (p *progressLines) finish(error) {}

// formatBuild is a build's progress in one line:
//
//	order_summary v2 replaying 1234567/20000000 (6%) 2.1M events/s ETA 9s
func formatBuild(b projection.BuildStatus) string {
	s := fmt.Sprintf("%s v%d %s", b.Projection, b.Version, b.Phase)
	switch b.Phase {
	case projection.PhaseReplaying, projection.PhaseCatchingUp:
		if b.Head == 0 && b.Position == 0 {
			return s // just started: the target is not known yet
		}
		return s + " " + formatProgress(b.Position, b.Head, b.Rate, b.ETA)
	case projection.PhaseSwitched:
		return s + fmt.Sprintf(" at position %d after %s", b.Position, b.Elapsed.Round(time.Millisecond))
	}
	return s + fmt.Sprintf(" at %d/%d", b.Position, b.Head)
}

// formatProgress: "1234567/20000000 (6%) 2.1M events/s ETA 9s".
func formatProgress(pos, until uint64, rate float64, eta time.Duration) string {
	s := fmt.Sprintf("%d/%d", pos, until)
	if until > 0 {
		s += fmt.Sprintf(" (%d%%)", min(pos, until)*100/until)
	}
	if rate > 0 {
		s += " " + formatRate(rate)
		if until > pos {
			s += " ETA " + eta.Round(time.Second).String()
		}
	}
	return s
}

func formatRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM events/s", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.0fk events/s", r/1e3)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk events/s", r/1e3)
	}
	return fmt.Sprintf("%.0f events/s", r)
}

// progressBar draws one build as a bar (mpb) with its phase, counts, rate
// and ETA as the Manager measures them.
type progressBar struct {
	p   *mpb.Progress
	bar *mpb.Bar

	mu  sync.Mutex
	cur projection.BuildStatus
}

func newProgressBar(w io.Writer) *progressBar {
	pb := &progressBar{}
	// Auto refresh: the caller decided that w is a terminal.
	pb.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(100), mpb.WithAutoRefresh())
	pb.bar = pb.p.New(0, mpb.BarStyle(),
		mpb.PrependDecorators(
			decor.Any(func(decor.Statistics) string {
				b := pb.status()
				return fmt.Sprintf("%s v%d %s", b.Projection, b.Version, b.Phase)
			}, decor.WCSyncSpaceR),
			decor.CountersNoUnit("%d/%d", decor.WCSyncSpace),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WCSyncSpace),
			decor.Any(func(decor.Statistics) string {
				b := pb.status()
				if b.Rate <= 0 {
					return ""
				}
				s := formatRate(b.Rate)
				if b.Head > b.Position {
					s += " ETA " + b.ETA.Round(time.Second).String()
				}
				return s
			}, decor.WCSyncSpace),
		),
	)
	return pb
}

func (pb *progressBar) status() projection.BuildStatus {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return pb.cur
}

func (pb *progressBar) report(b projection.BuildStatus) {
	pb.mu.Lock()
	pb.cur = b
	pb.mu.Unlock()
	// The total set without completing: the bar completes at finish.
	pb.bar.SetTotal(int64(b.Head), false)
	pb.bar.SetCurrent(int64(b.Position))
}

func (pb *progressBar) finish(err error) {
	if err == nil {
		pb.bar.SetTotal(-1, true)
	} else {
		pb.bar.Abort(false)
	}
	pb.p.Wait()
}

func newProjectionListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the projections: serving version, state, position, and any build in progress",
		Example: "  strata projection list",
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return a.withReadModels(true, func(cat *projection.Catalog) error {
				list, err := readmodels.List(ctx, cat)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tPOSITION\tBUILDING")
				for _, l := range list {
					version, state, position, build := "-", string(readmodels.StateBuilding), "-", "-"
					if l.Serving != nil {
						st, err := readmodels.StoredOf(ctx, cat, *l.Serving)
						if err != nil {
							return err
						}
						version, state, position = fmt.Sprintf("v%d", l.Serving.Number), string(st.State), fmt.Sprint(st.Position)
					}
					if b := l.Building; b != nil {
						build = fmt.Sprintf("v%d", b.Number)
						if b.Until > 0 {
							eta := time.Duration(0)
							if bj := readmodels.BuildingOf(*b); bj.ETASeconds > 0 {
								eta = time.Duration(bj.ETASeconds * float64(time.Second))
							}
							build += " " + formatProgress(b.Position, b.Until, b.Rate, eta)
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, version, state, position, build)
				}
				return tw.Flush()
			})
		}),
	}
}

func newProjectionStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Print a projection's serving version, position, the log's head, the lag (events, seconds), state and build progress",
		Long: `Print a projection's status as JSON: the serving version ("version"), its
position, the log's head, the lag in events and in seconds, its runner's
state (running, paused, failed with the failing event) and whether a runner
is at work ("active"). While a new version builds, "building" has its
version, position, target ("until"), rate and ETA; a projection whose first
version is still building has state "building".`,
		Example: "  strata projection status order_summary",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withFollower(func(s store.Store) error {
				return a.withReadModels(true, func(cat *projection.Catalog) error {
					head, err := s.Head(cmd.Context())
					if err != nil {
						return err
					}
					st, err := readmodels.ReadStatus(cmd.Context(), cat, s, args[0], head)
					if err != nil {
						return err
					}
					return writeJSON(cmd.OutOrStdout(), st)
				})
			})
		}),
	}
}

func newProjectionPauseCmd(a *app, pause bool) *cobra.Command {
	use, short := "resume NAME", "Resume a paused projection, or retry a failed one"
	if pause {
		use, short = "pause NAME", "Pause a projection's serving version (a running `strata projection run` follows)"
	}
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  strata projection " + strings.Fields(use)[0] + " order_summary",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withReadModels(true, func(cat *projection.Catalog) error {
				db, err := servingDB(cmd.Context(), cat, args[0])
				if err != nil {
					return err
				}
				defer db.Close()
				return projection.SetPaused(cmd.Context(), db, args[0], pause)
			})
		}),
	}
}

func newProjectionSkipCmd(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "skip NAME",
		Short:   "Move a failed projection past the event it failed on (recorded, with --reason)",
		Example: `  strata projection skip order_summary --reason "malformed event, ticket 42"`,
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usagef("give --reason: skips are recorded")
			}
			return a.withReadModels(true, func(cat *projection.Catalog) error {
				db, err := servingDB(cmd.Context(), cat, args[0])
				if err != nil {
					return err
				}
				defer db.Close()
				return projection.SkipFailed(cmd.Context(), db, args[0], reason, time.Now())
			})
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the event is skipped (recorded)")
	return cmd
}

func newProjectionRunCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "run [NAME...]",
		Short: "Run the applied projections, following the log live, until interrupted",
		Long: `Run the applied projections (all, or those named), following the log live
until interrupted. A projection whose applied definition differs from its
serving version's is rebuilt in the background (the serving version keeps
following the log and answering queries) and switched to when it has caught
up; build progress and switches are reported on stderr.`,
		Example: "  strata projection run",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			specs, err := a.specs()
			if err != nil {
				return err
			}
			var ps []projection.Projection
			if len(args) == 0 {
				names := make([]string, 0, len(specs))
				for n := range specs {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					ps = append(ps, specs[n])
				}
			}
			for _, n := range args {
				p, ok := specs[n]
				if !ok {
					return fmt.Errorf("%w: %q (apply it first)", projection.ErrUnknownProjection, n)
				}
				ps = append(ps, p)
			}
			if len(ps) == 0 {
				return errors.New("no projections applied (strata projection apply FILE.yaml)")
			}
			return a.withFollower(func(s store.Store) error {
				return a.withReadModels(false, func(cat *projection.Catalog) error {
					return runManagers(cmd.Context(), cat, s, ps, cmd.ErrOrStderr())
				})
			})
		}),
	}
}

// runManagers runs a Manager per projection until ctx ends (nil) or one of
// them fails (its error), reporting on stderr.
func runManagers(ctx context.Context, cat *projection.Catalog, s store.Store, ps []projection.Projection, stderr io.Writer) error {
	w := &syncWriter{w: stderr}
	return readmodels.Run(ctx, cat, s, ps, readmodels.RunOptions{
		Logger:   slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Progress: newProgressLines(w, 10*time.Second).report,
	})
}

// syncWriter serializes writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// The status as `projection status` prints it.
type (
	projectionStatusJSON = readmodels.Status
	buildingJSON         = readmodels.Building
)
