package cli

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// Read models live beside the log: the SQLite database, and the applied
// declarative projections (one YAML file each).
func (a *app) readModelsPath() string { return filepath.Join(a.dataDir, "readmodels.db") }
func (a *app) specsDir() string       { return filepath.Join(a.dataDir, "projections") }

// specs loads every applied projection.
func (a *app) specs() (map[string]*projection.Declarative, error) {
	ents, err := os.ReadDir(a.specsDir())
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
		b, err := os.ReadFile(filepath.Join(a.specsDir(), e.Name()))
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

func (a *app) withReadModels(fn func(db *sql.DB) error) error {
	if _, err := os.Stat(a.dataDir); err != nil {
		return fmt.Errorf("no log at %s (set --data or %s)", a.dataDir, dataEnv)
	}
	db, err := projection.OpenSQLite(a.readModelsPath())
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

func newProjectionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projection",
		Short: "Manage read models: apply a YAML projection, list, status, pause, resume, skip, run",
		Long: `Projections turn the log into SQL tables in DATA/readmodels.db (SQLite). A
declarative projection is a YAML file: the tables' DDL and one SQL statement
per event type (see examples/order_summary.yaml). Each batch's rows commit
together with the projection's checkpoint, so a crash never applies an event
twice or loses one.`,
		Example: `  strata projection apply examples/order_summary.yaml
  strata projection status order_summary
  strata projection run`,
	}
	cmd.AddCommand(newProjectionApplyCmd(a), newProjectionListCmd(a), newProjectionStatusCmd(a),
		newProjectionPauseCmd(a, true), newProjectionPauseCmd(a, false), newProjectionSkipCmd(a), newProjectionRunCmd(a))
	return cmd
}

func newProjectionApplyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "apply FILE.yaml",
		Short:   "Add a declarative projection and build it up to the log's head",
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
			if err := os.MkdirAll(a.specsDir(), 0o755); err != nil {
				return err
			}
			path := filepath.Join(a.specsDir(), p.Name()+".yaml")
			if old, err := os.ReadFile(path); err == nil && !bytes.Equal(old, src) {
				return fmt.Errorf("projection %s is already applied with another definition (changing one means rebuilding it, which is not supported yet)", p.Name())
			}
			if err := writeFileAtomic(path, src); err != nil {
				return err
			}
			return a.runProjections(cmd.Context(), []projection.Projection{p}, true, func(s store.Store, stored []projection.Stored, head uint64) error {
				for _, st := range stored {
					if err := writeJSON(cmd.OutOrStdout(), projectionStatus(cmd.Context(), s, st, head)); err != nil {
						return err
					}
				}
				return nil
			})
		}),
	}
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// runProjections runs ps over the log (followed read-only, so writers can
// keep the log open) until ctx ends, or, with untilHead, until each has
// reached the head as it was at the start.
func (a *app) runProjections(ctx context.Context, ps []projection.Projection, untilHead bool, done func(store.Store, []projection.Stored, uint64) error) error {
	return a.withFollower(func(s store.Store) error {
		return a.withReadModels(func(db *sql.DB) error {
			cat, err := examples.New(s, nil) // for upcasting the examples' events
			if err != nil {
				return err
			}
			head, err := s.Head(ctx)
			if err != nil {
				return err
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			var wg sync.WaitGroup
			runners := make([]*projection.Runner, len(ps))
			errs := make([]error, len(ps))
			for i, p := range ps {
				runners[i] = projection.NewRunner(p, db, s, projection.Options{Registry: cat.Registry})
				wg.Go(func() { errs[i] = runners[i].Run(runCtx) })
			}
			var waitErr error
			if untilHead {
				for _, r := range runners {
					if err := r.WaitFor(ctx, head); err != nil {
						waitErr = err
						break
					}
				}
				cancel()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil && !errors.Is(err, context.Canceled) && waitErr == nil {
					waitErr = err
				}
			}
			var stored []projection.Stored
			for _, p := range ps {
				st, err := projection.ReadStored(context.Background(), db, p.Name())
				if err == nil {
					stored = append(stored, st)
				}
			}
			if done != nil {
				if err := done(s, stored, head); err != nil {
					return err
				}
			}
			if errors.Is(waitErr, context.Canceled) && ctx.Err() != nil {
				return nil // Ctrl-C ends `projection run`
			}
			return waitErr
		})
	})
}

type projectionStatusJSON struct {
	Name       string              `json:"name"`
	State      projection.State    `json:"state"`
	Active     bool                `json:"active"`
	Position   uint64              `json:"position"`
	Head       uint64              `json:"head"`
	LagEvents  uint64              `json:"lag_events"`
	LagSeconds float64             `json:"lag_seconds"`
	Failure    *projection.Failure `json:"failure,omitempty"`
}

// projectionStatus is a projection's stored state with its lag behind
// head, in events and in seconds (how long the oldest unapplied event has
// waited).
func projectionStatus(ctx context.Context, s store.Store, st projection.Stored, head uint64) projectionStatusJSON {
	out := projectionStatusJSON{Name: st.Name, State: st.State, Active: st.Active(time.Now()), Position: st.Position, Head: head, Failure: st.Failure}
	if head > st.Position {
		out.LagEvents = head - st.Position
		for r, err := range s.ReadAll(ctx, store.ReadAllOptions{After: st.Position, Limit: 1}) {
			if err == nil {
				out.LagSeconds = time.Since(r.Time).Seconds()
			}
		}
	}
	return out
}

func newProjectionListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the projections and their state",
		Example: "  strata projection list",
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withReadModels(func(db *sql.DB) error {
				stored, err := projection.ListStored(cmd.Context(), db)
				if err != nil {
					return err
				}
				rows := [][2]string{{"NAME", "STATE  POSITION"}}
				sort.Slice(stored, func(i, j int) bool { return stored[i].Name < stored[j].Name })
				for _, st := range stored {
					rows = append(rows, [2]string{st.Name, fmt.Sprintf("%s  %d", st.State, st.Position)})
				}
				return writeKV(cmd.OutOrStdout(), rows)
			})
		}),
	}
}

func newProjectionStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "status NAME",
		Short:   "Print a projection's position, the log's head, the lag (events, seconds) and state",
		Example: "  strata projection status order_summary",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withFollower(func(s store.Store) error {
				return a.withReadModels(func(db *sql.DB) error {
					st, err := projection.ReadStored(cmd.Context(), db, args[0])
					if err != nil {
						return err
					}
					head, err := s.Head(cmd.Context())
					if err != nil {
						return err
					}
					return writeJSON(cmd.OutOrStdout(), projectionStatus(cmd.Context(), s, st, head))
				})
			})
		}),
	}
}

func newProjectionPauseCmd(a *app, pause bool) *cobra.Command {
	use, short := "resume NAME", "Resume a paused projection, or retry a failed one"
	if pause {
		use, short = "pause NAME", "Pause a projection (a running `strata projection run` follows)"
	}
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  strata projection " + strings.Fields(use)[0] + " order_summary",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withReadModels(func(db *sql.DB) error {
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
			return a.withReadModels(func(db *sql.DB) error {
				return projection.SkipFailed(cmd.Context(), db, args[0], reason, time.Now())
			})
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the event is skipped (recorded)")
	return cmd
}

func newProjectionRunCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "run [NAME...]",
		Short:   "Run the applied projections, following the log live, until interrupted",
		Example: "  strata projection run",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			specs, err := a.specs()
			if err != nil {
				return err
			}
			var ps []projection.Projection
			if len(args) == 0 {
				for _, p := range specs {
					ps = append(ps, p)
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
			return a.runProjections(cmd.Context(), ps, false, nil)
		}),
	}
}
