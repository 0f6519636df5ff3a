package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/examples/orders/gen"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// rebuildTarget is the yardstick: 500 million events.
const rebuildTarget = 500_000_000

type benchRebuildConfig struct {
	Events, Customers int
	Workers           []int
	Projections       []string  // "go", "yaml"
	Log               string    // an existing log to replay instead of a generated one
	Profile           io.Writer // where to write a CPU profile of the rebuilds
}

type benchRebuildRun struct {
	Projection string        `json:"projection"`
	Workers    int           `json:"workers"`
	Events     uint64        `json:"events"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Rate       float64       `json:"events_per_second"`
	Target     time.Duration `json:"extrapolated_500m_ns"`
	Customers  int           `json:"customers"`
	Orders     int64         `json:"orders"`
}

func newBenchRebuildCmd(a *app) *cobra.Command {
	var (
		cfg                             benchRebuildConfig
		workers, projs, parent, profile string
		out                             string
	)
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Time a parallel rebuild of lifetime_spend over a generated order history",
		Long: `Generate an order history (strata gen orders) in a fresh temporary log, or use
an existing one (--log), then rebuild the lifetime_spend read model from all of
it with a parallel replay, once per projection (Go, YAML) and worker count,
each into a fresh SQLite file. Reports events/s end to end (read, decode,
upcast, aggregate, write) and the time the same rate takes for 500 million
events; the first row, a plain read of the same log, is the floor to compare
against on a machine whose speed varies.`,
		Example: `  strata bench rebuild --events 2000000
  strata bench rebuild --events 20000000 --workers 1,2 --projection go
  strata bench rebuild --log /data/shop --workers 2 -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var err error
			if cfg.Workers, err = parseInts(workers); err != nil {
				return usagef("--workers %q: %v", workers, err)
			}
			cfg.Projections = strings.Split(projs, ",")
			for _, p := range cfg.Projections {
				if p != "go" && p != "yaml" {
					return usagef("--projection %q: want go, yaml or go,yaml", projs)
				}
			}
			if cfg.Log == "" && cfg.Events < 1 {
				return usagef("--events %d: want at least 1", cfg.Events)
			}
			if err := checkFormat(out); err != nil {
				return err
			}
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.Profile = f
			}
			return withBenchDir(parent, func(dir string) error {
				runs, err := benchRebuild(cmd.Context(), dir, cfg, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				return printBenchRebuild(cmd.OutOrStdout(), out, runs)
			})
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", 2_000_000, "events to generate")
	f.IntVar(&cfg.Customers, "customers", 10_000, "customers in the generated history")
	f.StringVar(&workers, "workers", "1,2", "comma-separated worker counts to time")
	f.StringVar(&projs, "projection", "go,yaml", "which lifetime_spend to time: go, yaml or both")
	f.StringVar(&cfg.Log, "log", "", "replay this existing log (read-only) instead of generating one")
	f.StringVar(&parent, "dir", "", "create the temporary files inside this directory (default: the system's)")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the rebuilds (not the generation) to this file")
	addOutputFlag(cmd, &out, formatTable)
	return cmd
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchRebuild(ctx context.Context, dir string, cfg benchRebuildConfig, progress io.Writer) ([]benchRebuildRun, error) {
	var src store.Store
	if cfg.Log != "" {
		f, err := eventlog.OpenFollower(cfg.Log)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		src = f
	} else {
		l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{Durability: eventlog.SyncNone})
		if err != nil {
			return nil, err
		}
		defer l.Close()
		t0 := time.Now()
		res, err := gen.Orders(ctx, l, gen.Options{Events: cfg.Events, Customers: cfg.Customers})
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		fmt.Fprintf(progress, "strata: generated %d events (%d orders) in %v\n", res.Events, res.Orders, time.Since(t0).Round(time.Millisecond))
		src = l
	}
	head, err := src.Head(ctx)
	if err != nil {
		return nil, err
	}
	cat, err := examples.New(src, nil)
	if err != nil {
		return nil, err
	}
	if cfg.Profile != nil {
		if err := pprof.StartCPUProfile(cfg.Profile); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	// The floor, timed in the same run so that rates compare across days of
	// a noisy machine: reading and CRC-checking every record, nothing else.
	t0 := time.Now()
	var n uint64
	for _, err := range src.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			return nil, err
		}
		n++
	}
	read := benchRebuildRun{Projection: "read only", Workers: 1, Events: n, Elapsed: time.Since(t0)}
	read.Rate = float64(n) / read.Elapsed.Seconds()
	read.Target = time.Duration(rebuildTarget / read.Rate * float64(time.Second))
	runs := []benchRebuildRun{read}
	for _, kind := range cfg.Projections {
		for _, w := range cfg.Workers {
			p, err := lifetimeSpend(kind)
			if err != nil {
				return nil, err
			}
			run, err := timeRebuild(ctx, filepath.Join(dir, fmt.Sprintf("%s-%d.db", kind, w)), p, src, cat.Registry, w, head)
			if err != nil {
				return nil, fmt.Errorf("%s, %d workers: %w", kind, w, err)
			}
			run.Projection = kind
			fmt.Fprintf(progress, "strata: %s with %d workers: %.0f events/s\n", kind, w, run.Rate)
			runs = append(runs, run)
		}
	}
	return runs, nil
}

func lifetimeSpend(kind string) (projection.Projection, error) {
	if kind == "go" {
		return orders.LifetimeSpend{}, nil
	}
	return projection.ParseSpec(examples.LifetimeSpendYAML)
}

func timeRebuild(ctx context.Context, path string, p projection.Projection, src store.Store, reg *event.Registry, workers int, head uint64) (benchRebuildRun, error) {
	db, err := projection.OpenSQLite(path)
	if err != nil {
		return benchRebuildRun{}, err
	}
	defer db.Close()
	t0 := time.Now()
	if _, err := projection.Replay(ctx, p, db, src, projection.ReplayOptions{Workers: workers, Until: head, Registry: reg}); err != nil {
		return benchRebuildRun{}, err
	}
	run := benchRebuildRun{Workers: workers, Events: head, Elapsed: time.Since(t0)}
	run.Rate = float64(head) / run.Elapsed.Seconds()
	run.Target = time.Duration(rebuildTarget / run.Rate * float64(time.Second))
	// What was built, so that a fast but wrong rebuild shows.
	if err := db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(orders), 0) FROM lifetime_spend`).Scan(&run.Customers, &run.Orders); err != nil {
		return run, err
	}
	return run, nil
}

func printBenchRebuild(w io.Writer, format string, runs []benchRebuildRun) error {
	if format == formatJSON {
		for _, r := range runs {
			if err := writeJSON(w, r); err != nil {
				return err
			}
		}
		return nil
	}
	rows := [][2]string{{"PROJECTION/WORKERS", "EVENTS  SECONDS  EVENTS/S  500M AT THIS RATE  CUSTOMERS  ORDERS"}}
	for _, r := range runs {
		rows = append(rows, [2]string{fmt.Sprintf("%s/%d", r.Projection, r.Workers),
			fmt.Sprintf("%d  %.2f  %.0f  %v  %d  %d", r.Events, r.Elapsed.Seconds(), r.Rate, r.Target.Round(time.Second), r.Customers, r.Orders)})
	}
	return writeKV(w, rows)
}
