package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/eventlog"
)

type verifyJSON struct {
	Dir      string `json:"dir"`
	OK       bool   `json:"ok"`
	Segments int    `json:"segments"`
	Records  uint64 `json:"records"`
	Bytes    int64  `json:"bytes"`
	Head     uint64 `json:"head"`
	TornTail bool   `json:"torn_tail"`
	// Set only when a record failed its check.
	Segment string `json:"segment,omitempty"`
	Offset  *int64 `json:"offset,omitempty"` // a pointer: offset 0 is a real place
	Reason  string `json:"reason,omitempty"`
}

func newVerifyCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every record of every segment; report the first corruption found",
		Long: `Check the checksum of every record in every segment of the log, without
opening it for writing. On corruption, print the segment file and byte offset
of the first bad record and exit with code 1.`,
		Example: `  strata verify
  strata verify --data /var/lib/strata -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			if _, err := os.Stat(a.dataDir); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no log at %s (set --data or %s)", a.dataDir, dataEnv)
			}
			rep, err := a.env.Verify(cmd.Context(), a.dataDir)
			var corrupt *eventlog.CorruptionError
			if err != nil && !errors.As(err, &corrupt) {
				return fmt.Errorf("verify %s: %w", a.dataDir, err)
			}
			if perr := printVerify(cmd.OutOrStdout(), output, a.dataDir, rep, corrupt); perr != nil {
				return perr
			}
			if corrupt != nil {
				return fmt.Errorf("verify %s: %w", a.dataDir, err)
			}
			return nil
		}),
	}
	addOutputFlag(cmd, &output, formatTable)
	return cmd
}

// printVerify prints the report, and where the log is corrupt when corrupt
// is not nil.
func printVerify(w io.Writer, format, dir string, rep eventlog.VerifyReport, corrupt *eventlog.CorruptionError) error {
	if format == formatJSON {
		out := verifyJSON{Dir: dir, OK: corrupt == nil, Segments: rep.Segments, Records: rep.Records, Bytes: rep.Bytes, Head: rep.Head, TornTail: rep.TornTail}
		if corrupt != nil {
			out.Segment, out.Offset, out.Reason = corrupt.Segment, &corrupt.Offset, corrupt.Reason
		}
		return writeJSON(w, out)
	}
	status := "ok"
	switch {
	case corrupt != nil:
		status = "CORRUPT"
	case rep.TornTail:
		// Not corruption: a write the crash cut short, never acknowledged.
		status = "ok (torn tail: the next open truncates an incomplete last write)"
	}
	rows := [][2]string{
		{"dir", dir},
		{"status", status},
		{"segments", strconv.Itoa(rep.Segments)},
		{"records", strconv.FormatUint(rep.Records, 10)},
		{"bytes", formatBytes(rep.Bytes)},
		{"head", strconv.FormatUint(rep.Head, 10)},
	}
	if corrupt != nil {
		rows = append(rows,
			[2]string{"segment", corrupt.Segment},
			[2]string{"offset", strconv.FormatInt(corrupt.Offset, 10)},
			[2]string{"reason", corrupt.Reason},
		)
	}
	return writeKV(w, rows)
}
