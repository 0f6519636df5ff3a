package cli

import (
	"context"
	"fmt"
	"iter"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// subscriber is the part of a store tail needs.
type subscriber interface {
	Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error]
	Head(ctx context.Context) (uint64, error)
}

func newTailCmd(a *app) *cobra.Command {
	var (
		opts    store.SubscribeOptions
		fromEnd bool
		output  string
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print events as they are appended, until interrupted",
		Long: `Print the log's events from a position on, then keep printing new events as
they are appended, until Ctrl-C (or SIGTERM), which ends it with exit code 0.

Without --after or --from-end, tail starts at the beginning of the log.`,
		Example: `  strata tail --from-end
  strata tail --after 1000 --type order.placed -o table`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withFollower(func(s store.Store) error {
				w := newRecordWriter(cmd.OutOrStdout(), output, true)
				return tailRecords(cmd.Context(), s, opts, fromEnd, w)
			})
		}),
	}
	f := cmd.Flags()
	f.Uint64Var(&opts.After, "after", 0, "print events after this position")
	f.BoolVar(&fromEnd, "from-end", false, "print only events appended from now on")
	f.StringSliceVar(&opts.Filter.Types, "type", nil, "only events of this type (repeatable, or comma-separated)")
	f.StringVar(&opts.Filter.StreamPrefix, "prefix", "", "only streams whose name starts with this")
	addOutputFlag(cmd, &output, formatJSON)
	cmd.MarkFlagsMutuallyExclusive("after", "from-end")
	return cmd
}

// tailRecords prints what the subscription yields until ctx is cancelled,
// which is how a user ends a tail, so it is not an error.
func tailRecords(ctx context.Context, s subscriber, opts store.SubscribeOptions, fromEnd bool, w recordWriter) error {
	if fromEnd {
		head, err := s.Head(ctx)
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		opts.After = head
	}
	for r, err := range s.Subscribe(ctx, opts) {
		if err != nil {
			if ctx.Err() != nil {
				return w.Flush()
			}
			return fmt.Errorf("tail: %w", err)
		}
		if err := w.Write(&r); err != nil {
			return err
		}
	}
	return w.Flush()
}
