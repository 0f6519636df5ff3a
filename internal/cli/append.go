package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// appender is the part of a store append needs.
type appender interface {
	Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error)
}

// appendResultJSON is append's output.
type appendResultJSON struct {
	Stream        string `json:"stream"`
	Version       uint64 `json:"version"`
	FirstPosition uint64 `json:"first_position"`
	LastPosition  uint64 `json:"last_position"`
}

func newAppendCmd(a *app) *cobra.Command {
	var file, expect, output string
	cmd := &cobra.Command{
		Use:   "append STREAM",
		Short: "Append events read from a file or stdin to a stream, all or none",
		Long: `Append events to STREAM in one atomic append: all of them or none.

Input is either one JSON array of events or one JSON object per line. Each
event is {"type": "...", "data": <any JSON>} plus, optionally, "id" (a UUID,
for idempotent retries), "schema" (a number) and "metadata" (any JSON). The
output of 'strata read' is accepted too, so a stream can be copied.

If any event is malformed, nothing is appended and the error names its line.`,
		Example: `  echo '{"type":"order.placed","data":{"sku":"A1","qty":2}}' | strata append orders-42
  strata append orders-42 --file events.json --expect 3
  strata read orders-42 | strata append orders-42-copy --expect no-stream`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want one STREAM argument, got %d", len(args))
			}
			return nil
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			stream := args[0]
			if err := event.ValidateStream(stream); err != nil {
				return &usageError{err}
			}
			expected, err := store.ParseExpectedVersion(expect)
			if err != nil {
				return &usageError{err}
			}
			if err := checkFormat(output); err != nil {
				return err
			}
			events, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			return a.withStore(false, func(s store.Store) error {
				res, err := appendEvents(cmd.Context(), s, stream, expected, events)
				if err != nil {
					return err
				}
				return printAppendResult(cmd.OutOrStdout(), output, stream, res)
			})
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read events from this file instead of stdin (- for stdin)")
	f.StringVar(&expect, "expect", "any", "expected stream version: any, no-stream, stream-exists or a number")
	addOutputFlag(cmd, &output, formatJSON)
	return cmd
}

// readInput parses all the events before the log is opened, so bad input
// never leaves a log behind, let alone a partial append.
func readInput(cmd *cobra.Command, file string) ([]event.Event, error) {
	name := "stdin"
	var r io.Reader
	if file == "" || file == "-" {
		r = cmd.InOrStdin()
		if f, ok := r.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "strata: reading events from the terminal; end with Ctrl-D")
			}
		}
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, file
	}
	events, err := parseEvents(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return events, nil
}

// appendEvents makes the single Append call that keeps the input atomic.
func appendEvents(ctx context.Context, s appender, stream string, expected store.ExpectedVersion, events []event.Event) (store.AppendResult, error) {
	res, err := s.Append(ctx, stream, expected, events...)
	if err != nil {
		return res, fmt.Errorf("append to %q: %w", stream, err)
	}
	return res, nil
}

func printAppendResult(w io.Writer, format, stream string, res store.AppendResult) error {
	if format == formatJSON {
		return writeJSON(w, appendResultJSON{
			Stream:        stream,
			Version:       res.Version,
			FirstPosition: res.FirstPosition,
			LastPosition:  res.LastPosition,
		})
	}
	n := res.LastPosition - res.FirstPosition + 1
	noun := "events"
	if n == 1 {
		noun = "event"
	}
	_, err := fmt.Fprintf(w, "appended %d %s to %s: version %d, positions %d..%d\n",
		n, noun, stream, res.Version, res.FirstPosition, res.LastPosition)
	return err
}
