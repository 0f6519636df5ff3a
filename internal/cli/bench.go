package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

const benchEventType = "bench.event"

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure append, read or rebuild throughput on a fresh temporary log",
		Long: `Whole-program benchmarks: each run creates a fresh log in a temporary
directory (inside --dir, to choose the filesystem) and removes it afterwards.
--data is not used.`,
		Example: `  strata bench append --writers 16 --events 200000
  strata bench append --batch 100 --durability none --dir /mnt/nvme
  strata bench read --events 2000000`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newBenchAppendCmd(a), newBenchReadCmd(a), newBenchRebuildCmd(a))
	return cmd
}

// withBenchDir runs fn with a new empty directory inside parent ("" means
// the system temporary directory) and removes it afterwards, whatever fn did.
func withBenchDir(parent string, fn func(dir string) error) (err error) {
	dir, err := os.MkdirTemp(parent, "strata-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	return fn(dir)
}

type benchAppendConfig struct {
	Writers, Events, Batch, Size int
}

func (c benchAppendConfig) check() error {
	switch {
	case c.Writers < 1:
		return usagef("--writers %d: want at least 1", c.Writers)
	case c.Events < 1:
		return usagef("--events %d: want at least 1", c.Events)
	case c.Batch < 1:
		return usagef("--batch %d: want at least 1", c.Batch)
	case c.Size < 0:
		return usagef("--size %d: must not be negative", c.Size)
	}
	return nil
}

type benchAppendResult struct {
	Appends  int
	Elapsed  time.Duration
	P50, P99 time.Duration
}

func newBenchAppendCmd(a *app) *cobra.Command {
	var (
		cfg         benchAppendConfig
		parent, out string
	)
	cmd := &cobra.Command{
		Use:   "append",
		Short: "Concurrent writers, each appending to its own stream",
		Example: `  strata bench append
  strata bench append --writers 64 --batch 10 --size 1024 --durability interval -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := cfg.check(); err != nil {
				return err
			}
			if err := checkFormat(out); err != nil {
				return err
			}
			return withBenchDir(parent, func(dir string) (err error) {
				s, err := a.env.Open(dir, eventlog.Options{Durability: a.durability})
				if err != nil {
					return fmt.Errorf("open %s: %w", dir, err)
				}
				defer func() {
					if cerr := s.Close(); cerr != nil && err == nil {
						err = cerr
					}
				}()
				res, err := benchAppend(cmd.Context(), s, cfg)
				if err != nil {
					return err
				}
				return printBenchAppend(cmd.OutOrStdout(), out, a.durability, cfg, res)
			})
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Writers, "writers", 16, "concurrent writers, one stream each")
	f.IntVar(&cfg.Events, "events", 200_000, "events to append in total")
	f.IntVar(&cfg.Batch, "batch", 1, "events per append call")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per event (a JSON value)")
	f.StringVar(&parent, "dir", "", "create the temporary log inside this directory (default: the system's)")
	addOutputFlag(cmd, &out, formatTable)
	return cmd
}

// benchAppend splits cfg.Events over cfg.Writers goroutines and times every
// Append call. The first failure stops all writers.
func benchAppend(ctx context.Context, s appender, cfg benchAppendConfig) (benchAppendResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	data := benchPayload(cfg.Size)
	lat := make([][]time.Duration, cfg.Writers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for w := range cfg.Writers {
		n := cfg.Events / cfg.Writers
		if w < cfg.Events%cfg.Writers {
			n++
		}
		wg.Go(func() {
			stream := "bench-" + strconv.Itoa(w)
			batch := make([]event.Event, min(cfg.Batch, max(n, 1)))
			for i := range batch {
				batch[i] = event.Event{Type: benchEventType, Data: data}
			}
			lat[w] = make([]time.Duration, 0, (n+cfg.Batch-1)/cfg.Batch)
			for n > 0 {
				k := min(cfg.Batch, n)
				t0 := time.Now()
				if _, err := s.Append(ctx, stream, store.Any, batch[:k]...); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("writer %d: %w", w, err); cancel() })
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				n -= k
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return benchAppendResult{}, firstErr
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return benchAppendResult{
		Appends: len(all),
		Elapsed: elapsed,
		P50:     percentile(all, 0.50),
		P99:     percentile(all, 0.99),
	}, nil
}

// percentile returns the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// benchPayload returns size bytes of valid JSON, so benchmark events look
// like real ones to anything that decodes them.
func benchPayload(size int) []byte {
	switch {
	case size <= 0:
		return nil
	case size == 1:
		return []byte("0")
	case size < 8:
		return []byte(`"` + strings.Repeat("x", size-2) + `"`)
	}
	return []byte(`{"p":"` + strings.Repeat("x", size-8) + `"}`)
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type benchAppendJSON struct {
	Benchmark     string  `json:"benchmark"`
	Durability    string  `json:"durability"`
	Writers       int     `json:"writers"`
	Batch         int     `json:"batch"`
	Size          int     `json:"size"`
	Events        int     `json:"events"`
	Appends       int     `json:"appends"`
	Seconds       float64 `json:"seconds"`
	EventsPerSec  float64 `json:"events_per_sec"`
	AppendsPerSec float64 `json:"appends_per_sec"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
}

func printBenchAppend(w io.Writer, format string, d eventlog.Durability, cfg benchAppendConfig, r benchAppendResult) error {
	eps := perSecond(int64(cfg.Events), r.Elapsed)
	aps := perSecond(int64(r.Appends), r.Elapsed)
	if format == formatJSON {
		return writeJSON(w, benchAppendJSON{
			Benchmark: "append", Durability: d.String(),
			Writers: cfg.Writers, Batch: cfg.Batch, Size: cfg.Size, Events: cfg.Events, Appends: r.Appends,
			Seconds: r.Elapsed.Seconds(), EventsPerSec: eps, AppendsPerSec: aps,
			P50ms: ms(r.P50), P99ms: ms(r.P99),
		})
	}
	return writeKV(w, [][2]string{
		{"durability", d.String()},
		{"writers", strconv.Itoa(cfg.Writers)},
		{"batch", strconv.Itoa(cfg.Batch)},
		{"event size", formatBytes(int64(cfg.Size))},
		{"events", strconv.Itoa(cfg.Events)},
		{"appends", strconv.Itoa(r.Appends)},
		{"total time", r.Elapsed.Round(time.Millisecond).String()},
		{"events/s", fmt.Sprintf("%.0f", eps)},
		{"appends/s", fmt.Sprintf("%.0f", aps)},
		{"append p50", fmt.Sprintf("%.3f ms", ms(r.P50))},
		{"append p99", fmt.Sprintf("%.3f ms", ms(r.P99))},
	})
}
