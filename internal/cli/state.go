package cli

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/examples"
)

type stateJSON struct {
	Stream  string `json:"stream"`
	Version uint64 `json:"version"`
	State   any    `json:"state"`
}

func newStateCmd(a *app) *cobra.Command {
	var at string
	var version uint64
	cmd := &cobra.Command{
		Use:   "state STREAM",
		Short: "Print the state of an aggregate, now or as it was at a time or version",
		Long: `Fold a stream's events into its aggregate's state. The decider is chosen by
the stream's category (the part before the first "-"). With --at, only events
recorded at or before that time count; with --version, only events up to
that version.`,
		Example: `  strata state account-acct-1
  strata state account-acct-1 --at 2026-11-28T09:30:00Z
  strata state account-acct-1 --version 2`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("at") && cmd.Flags().Changed("version") {
				return usagef("give --at or --version, not both")
			}
			var t time.Time
			if cmd.Flags().Changed("at") {
				var err error
				if t, err = parseTime(at); err != nil {
					return err
				}
			}
			return a.withCatalog(true, func(c *examples.Catalog) error {
				in, id, err := c.Inspector(args[0])
				if err != nil {
					return err
				}
				var state any
				var v uint64
				switch {
				case cmd.Flags().Changed("at"):
					state, v, err = in.StateAt(cmd.Context(), id, t)
				case cmd.Flags().Changed("version"):
					state, v, err = in.StateAtVersion(cmd.Context(), id, version)
				default:
					state, v, err = in.Load(cmd.Context(), id)
				}
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), stateJSON{Stream: args[0], Version: v, State: state})
			})
		}),
	}
	cmd.Flags().StringVar(&at, "at", "", "the state as of this time (RFC 3339)")
	cmd.Flags().Uint64Var(&version, "version", 0, "the state after this stream version")
	return cmd
}

func newSnapshotCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "snapshot STREAM",
		Short:   "Save a snapshot of an aggregate's current state, so loading it replays less",
		Example: `  strata snapshot account-acct-1`,
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withCatalog(false, func(c *examples.Catalog) error {
				in, id, err := c.Inspector(args[0])
				if err != nil {
					return err
				}
				s, err := in.Snapshot(cmd.Context(), id)
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), s)
			})
		}),
	}
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("time %q: use RFC 3339, e.g. 2026-11-28T09:30:00Z", s)
}

// stateColumns flattens a state's JSON object into sorted column names and
// values (nested values stay JSON), for CSV.
func stateColumns(state any) ([]string, map[string]string, error) {
	b, err := json.Marshal(state)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return []string{"state"}, map[string]string{"state": string(b)}, nil
	}
	cols := make([]string, 0, len(m))
	vals := make(map[string]string, len(m))
	for k, v := range m {
		cols = append(cols, k)
		var s string
		if json.Unmarshal(v, &s) == nil {
			vals[k] = s
		} else {
			vals[k] = string(v)
		}
	}
	sort.Strings(cols)
	return cols, vals, nil
}

// historyWriter prints history rows as JSON lines or CSV.
type historyWriter struct {
	format string
	out    io.Writer
	csv    *csv.Writer
	cols   []string
}

func (h *historyWriter) row(fixed [][2]string, state any) error {
	if h.format != formatCSV {
		obj := map[string]any{"state": state}
		for _, f := range fixed {
			if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				obj[f[0]] = n // versions are numbers in JSON
			} else if f[1] != "" {
				obj[f[0]] = f[1]
			}
		}
		return writeJSON(h.out, obj)
	}
	cols, vals, err := stateColumns(state)
	if err != nil {
		return err
	}
	if h.csv == nil {
		h.csv, h.cols = csv.NewWriter(h.out), cols
		header := make([]string, 0, len(fixed)+len(cols))
		for _, f := range fixed {
			header = append(header, f[0])
		}
		if err := h.csv.Write(append(header, cols...)); err != nil {
			return err
		}
	}
	rec := make([]string, 0, len(fixed)+len(h.cols))
	for _, f := range fixed {
		rec = append(rec, f[1])
	}
	for _, c := range h.cols {
		rec = append(rec, vals[c])
	}
	return h.csv.Write(rec)
}

func (h *historyWriter) flush() error {
	if h.csv != nil {
		h.csv.Flush()
		return h.csv.Error()
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func newHistoryCmd(a *app) *cobra.Command {
	var from, to, output string
	var every time.Duration
	var changes bool
	cmd := &cobra.Command{
		Use:   "history STREAM",
		Short: "Print an aggregate's state at every step of a time range, or each change",
		Long: `With --every, print the state at from, from+every, ... up to (not including)
to, computed in one pass over the events. With --changes, print one row per
state instead: the time it began (valid_from), the time it was replaced
(valid_to, empty while it still holds) and the state: the compact answer to
"the balance at every second of seven years".`,
		Example: `  strata history account-acct-1 --from 2026-11-28T00:00:00Z --to 2026-11-29T00:00:00Z --every 1h -o csv
  strata history account-acct-1 --from 2019-01-01 --to 2026-01-01 --changes`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if output != formatJSON && output != formatCSV {
				return usagef("output format %q: want json or csv", output)
			}
			if changes == (every > 0) {
				return usagef("give exactly one of --every DURATION or --changes")
			}
			t1, err := parseTime(from)
			if err != nil {
				return err
			}
			t2, err := parseTime(to)
			if err != nil {
				return err
			}
			if !t2.After(t1) {
				return usagef("--to must be after --from")
			}
			return a.withCatalog(true, func(c *examples.Catalog) error {
				in, id, err := c.Inspector(args[0])
				if err != nil {
					return err
				}
				h := &historyWriter{format: output, out: cmd.OutOrStdout()}
				if changes {
					for ch, err := range in.Changes(cmd.Context(), id, t1, t2) {
						if err != nil {
							return err
						}
						fixed := [][2]string{{"valid_from", formatTime(ch.From)}, {"valid_to", formatTime(ch.To)}, {"version", strconv.FormatUint(ch.Version, 10)}}
						if err := h.row(fixed, ch.State); err != nil {
							return err
						}
					}
					return h.flush()
				}
				for s, err := range in.Samples(cmd.Context(), id, t1, t2, every) {
					if err != nil {
						return err
					}
					if err := h.row([][2]string{{"at", formatTime(s.At)}, {"version", strconv.FormatUint(s.Version, 10)}}, s.State); err != nil {
						return err
					}
				}
				return h.flush()
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the range (RFC 3339)")
	f.StringVar(&to, "to", "", "end of the range, excluded (RFC 3339)")
	f.DurationVar(&every, "every", 0, "sample the state at this step (e.g. 1s, 1h)")
	f.BoolVar(&changes, "changes", false, "one row per change instead of samples")
	f.StringVarP(&output, "output", "o", formatJSON, "output format: json (lines) or csv")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}
