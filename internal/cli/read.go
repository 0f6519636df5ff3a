package cli

import (
	"context"
	"fmt"
	"iter"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// reader is the part of a store read needs.
type reader interface {
	ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error]
	ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error]
}

// readQuery is one read: of a stream when stream is set, of the whole log
// otherwise.
type readQuery struct {
	stream     string
	streamOpts store.ReadStreamOptions
	allOpts    store.ReadAllOptions
}

func newReadCmd(a *app) *cobra.Command {
	var (
		q      readQuery
		output string
	)
	cmd := &cobra.Command{
		Use:   "read [STREAM]",
		Short: "Print the events of one stream, or of the whole log in position order",
		Long: `Print the events of STREAM in version order, or without STREAM every event
of the log in position order, as JSON lines (or a table with -o table).

--from, --backwards apply to a stream; --after, --type, --prefix to the
whole log; --limit to both. Data that is not JSON is printed as a base64
string with "data_encoding":"base64".`,
		Example: `  strata read orders-42
  strata read orders-42 --backwards --limit 1
  strata read --after 1000 --type order.placed --prefix orders- -o table`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				q.stream = args[0]
			}
			if err := q.check(cmd); err != nil {
				return err
			}
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withStore(true, func(s store.Store) error {
				w := newRecordWriter(cmd.OutOrStdout(), output, false)
				return readRecords(cmd.Context(), s, q, w)
			})
		}),
	}
	f := cmd.Flags()
	f.Uint64Var(&q.streamOpts.From, "from", 0, "stream: first version to print (backwards: the highest; 0 = the end)")
	f.BoolVar(&q.streamOpts.Backwards, "backwards", false, "stream: newest first")
	f.IntVar(&q.allOpts.Limit, "limit", 0, "print at most this many events (0 = all)")
	f.Uint64Var(&q.allOpts.After, "after", 0, "log: print events after this position")
	f.StringSliceVar(&q.allOpts.Filter.Types, "type", nil, "log: only events of this type (repeatable, or comma-separated)")
	f.StringVar(&q.allOpts.Filter.StreamPrefix, "prefix", "", "log: only streams whose name starts with this")
	addOutputFlag(cmd, &output, formatJSON)
	return cmd
}

// check rejects flags that do not apply to the kind of read asked for,
// rather than ignoring them and printing something the user did not ask.
func (q *readQuery) check(cmd *cobra.Command) error {
	if q.allOpts.Limit < 0 {
		return usagef("--limit %d: must not be negative", q.allOpts.Limit)
	}
	q.streamOpts.Limit = q.allOpts.Limit
	flags := []string{"after", "type", "prefix"}
	if q.stream == "" {
		flags = []string{"from", "backwards"}
	} else if err := event.ValidateStream(q.stream); err != nil {
		return &usageError{err}
	}
	for _, name := range flags {
		if !cmd.Flags().Changed(name) {
			continue
		}
		if q.stream == "" {
			return usagef("--%s applies only when reading a STREAM", name)
		}
		return usagef("--%s applies only when reading the whole log (no STREAM)", name)
	}
	return nil
}

// readRecords runs q against s and prints what it yields.
func readRecords(ctx context.Context, s reader, q readQuery, w recordWriter) error {
	var seq iter.Seq2[event.Record, error]
	if q.stream != "" {
		seq = s.ReadStream(ctx, q.stream, q.streamOpts)
	} else {
		seq = s.ReadAll(ctx, q.allOpts)
	}
	for r, err := range seq {
		if err != nil {
			w.Flush() // keep what was read before the failure
			if q.stream != "" {
				return fmt.Errorf("read stream %q: %w", q.stream, err)
			}
			return fmt.Errorf("read log: %w", err)
		}
		if err := w.Write(&r); err != nil {
			return err
		}
	}
	return w.Flush()
}
