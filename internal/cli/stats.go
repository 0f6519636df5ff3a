package cli

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// statser is an optional ability of a store, found by type assertion: the
// embedded log reports its size, other backends need not.
type statser interface {
	Stats(ctx context.Context) (eventlog.Stats, error)
}

type statsJSON struct {
	Head     uint64 `json:"head"`
	Streams  uint64 `json:"streams"`
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
	Indexed  uint64 `json:"indexed"`
}

func newStatsCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print the size of the log: head, streams, segments, bytes, indexed position",
		Example: `  strata stats
  strata stats --data /var/lib/strata -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withStore(true, func(s store.Store) error {
				st, ok := s.(statser)
				if !ok {
					return errors.New("this store does not report stats")
				}
				stats, err := st.Stats(cmd.Context())
				if err != nil {
					return err
				}
				return printStats(cmd.OutOrStdout(), output, stats)
			})
		}),
	}
	addOutputFlag(cmd, &output, formatTable)
	return cmd
}

func printStats(w io.Writer, format string, s eventlog.Stats) error {
	if format == formatJSON {
		return writeJSON(w, statsJSON{
			Head: s.Head, Streams: s.Streams, Segments: s.Segments, Bytes: s.Bytes, Indexed: s.Indexed,
		})
	}
	indexed := strconv.FormatUint(s.Indexed, 10)
	if s.Indexed < s.Head {
		// A lagging index is normal right after heavy appends; say so, so it
		// does not read as data loss.
		indexed += " (" + strconv.FormatUint(s.Head-s.Indexed, 10) + " behind head, catching up)"
	}
	return writeKV(w, [][2]string{
		{"head", strconv.FormatUint(s.Head, 10)},
		{"streams", strconv.FormatUint(s.Streams, 10)},
		{"segments", strconv.Itoa(s.Segments)},
		{"bytes", formatBytes(s.Bytes)},
		{"indexed", indexed},
	})
}
