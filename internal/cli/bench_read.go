package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// benchReadStreams spreads the filled events over this many streams so the
// stream index holds a realistic number of keys.
const benchReadStreams = 64

// benchFillBatchBytes keeps fill batches well under the log's default
// MaxBatchBytes (4 MiB), so a batch is one write.
const benchFillBatchBytes = 1 << 20

type benchReadConfig struct {
	Events, Size int
}

type benchReadResult struct {
	Events       uint64
	PayloadBytes int64 // type, data and metadata of every record read
	DiskBytes    int64 // segment bytes, when the store reports stats
	Fill         time.Duration
	Cold, Warm   time.Duration // first and second full read; the page cache is warm for both after the fill, the second also has the process warm
}

func newBenchReadCmd(a *app) *cobra.Command {
	var (
		cfg         benchReadConfig
		parent, out string
	)
	cmd := &cobra.Command{
		Use:   "read",
		Short: "Fill a log, reopen it and time a full read of it",
		Long: `Fill a fresh log with --events events (large batches, durability none),
close it, reopen it and read the whole log twice. The second, warm-cache read
is reported.`,
		Example: `  strata bench read
  strata bench read --events 500000 --size 1024 --dir /mnt/nvme -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if cfg.Events < 1 {
				return usagef("--events %d: want at least 1", cfg.Events)
			}
			if cfg.Size < 0 {
				return usagef("--size %d: must not be negative", cfg.Size)
			}
			if err := checkFormat(out); err != nil {
				return err
			}
			return withBenchDir(parent, func(dir string) error {
				fmt.Fprintf(cmd.ErrOrStderr(), "strata: filling %s with %d events of %d bytes\n", dir, cfg.Events, cfg.Size)
				res, err := benchRead(cmd.Context(), a.env.Open, dir, cfg)
				if err != nil {
					return err
				}
				return printBenchRead(cmd.OutOrStdout(), out, cfg, res)
			})
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", 2_000_000, "events to fill the log with")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per event (a JSON value)")
	f.StringVar(&parent, "dir", "", "create the temporary log inside this directory (default: the system's)")
	addOutputFlag(cmd, &out, formatTable)
	return cmd
}

type openFunc func(dir string, opts eventlog.Options) (store.Store, error)

// benchRead fills a log in dir, reopens it so reads come from the segments
// rather than anything the writer kept in memory, and times two full reads.
func benchRead(ctx context.Context, open openFunc, dir string, cfg benchReadConfig) (res benchReadResult, err error) {
	opts := eventlog.Options{Durability: eventlog.SyncNone}
	s, err := open(dir, opts)
	if err != nil {
		return res, fmt.Errorf("open %s: %w", dir, err)
	}
	t0 := time.Now()
	err = benchFill(ctx, s, cfg)
	if cerr := s.Close(); err == nil {
		err = cerr // Close is when SyncNone writes reach the disk: part of the fill
	}
	res.Fill = time.Since(t0)
	if err != nil {
		return res, fmt.Errorf("fill: %w", err)
	}

	if s, err = open(dir, opts); err != nil {
		return res, fmt.Errorf("reopen: %w", err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	for pass := range 2 {
		t0 := time.Now()
		n, bytes, err := readAllCounting(ctx, s)
		if err != nil {
			return res, err
		}
		if n != uint64(cfg.Events) {
			return res, fmt.Errorf("read %d events, filled %d", n, cfg.Events)
		}
		res.Events, res.PayloadBytes = n, bytes
		if pass == 0 {
			res.Cold = time.Since(t0)
		} else {
			res.Warm = time.Since(t0)
		}
	}
	if st, ok := s.(statser); ok {
		stats, err := st.Stats(ctx)
		if err != nil {
			return res, err
		}
		res.DiskBytes = stats.Bytes
	}
	return res, nil
}

func benchFill(ctx context.Context, s appender, cfg benchReadConfig) error {
	data := benchPayload(cfg.Size)
	batchLen := max(1, min(1000, benchFillBatchBytes/max(cfg.Size+len(benchEventType), 1)))
	batch := make([]event.Event, batchLen)
	for i := range batch {
		batch[i] = event.Event{Type: benchEventType, Data: data}
	}
	for done, call := 0, 0; done < cfg.Events; call++ {
		k := min(batchLen, cfg.Events-done)
		stream := "bench-" + strconv.Itoa(call%benchReadStreams)
		if _, err := s.Append(ctx, stream, store.Any, batch[:k]...); err != nil {
			return err
		}
		done += k
	}
	return nil
}

func readAllCounting(ctx context.Context, s reader) (n uint64, bytes int64, err error) {
	for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			return n, bytes, fmt.Errorf("read: %w", err)
		}
		n++
		bytes += int64(r.Size())
	}
	return n, bytes, nil
}

type benchReadJSON struct {
	Benchmark        string  `json:"benchmark"`
	Events           uint64  `json:"events"`
	Size             int     `json:"size"`
	FillSeconds      float64 `json:"fill_seconds"`
	FirstReadSeconds float64 `json:"first_read_seconds"`
	Seconds          float64 `json:"seconds"` // the second, reported read
	EventsPerSec     float64 `json:"events_per_sec"`
	PayloadMBPerSec  float64 `json:"payload_mb_per_sec"`
	DiskBytes        int64   `json:"disk_bytes,omitempty"`
	DiskMBPerSec     float64 `json:"disk_mb_per_sec,omitempty"`
}

func printBenchRead(w io.Writer, format string, cfg benchReadConfig, r benchReadResult) error {
	eps := perSecond(int64(r.Events), r.Warm)
	payloadMBs := perSecond(r.PayloadBytes, r.Warm) / 1e6
	diskMBs := perSecond(r.DiskBytes, r.Warm) / 1e6
	if format == formatJSON {
		return writeJSON(w, benchReadJSON{
			Benchmark: "read", Events: r.Events, Size: cfg.Size,
			FillSeconds: r.Fill.Seconds(), FirstReadSeconds: r.Cold.Seconds(), Seconds: r.Warm.Seconds(),
			EventsPerSec: eps, PayloadMBPerSec: payloadMBs, DiskBytes: r.DiskBytes, DiskMBPerSec: diskMBs,
		})
	}
	rows := [][2]string{
		{"events", strconv.FormatUint(r.Events, 10)},
		{"event size", formatBytes(int64(cfg.Size))},
		{"fill time", r.Fill.Round(time.Millisecond).String()},
		{"first read", r.Cold.Round(time.Millisecond).String()},
		{"second read", r.Warm.Round(time.Millisecond).String()},
		{"events/s", fmt.Sprintf("%.0f", eps)},
		{"payload MB/s", fmt.Sprintf("%.1f", payloadMBs)},
	}
	if r.DiskBytes > 0 {
		rows = append(rows,
			[2]string{"log size", formatBytes(r.DiskBytes)},
			[2]string{"disk MB/s", fmt.Sprintf("%.1f", diskMBs)})
	}
	return writeKV(w, rows)
}
