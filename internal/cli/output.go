package cli

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/event"
)

const (
	formatJSON  = "json"
	formatTable = "table"
	formatCSV   = "csv" // history only
)

// addOutputFlag registers -o with the default that suits the command: json
// for commands whose output feeds other programs, table for reports people
// read.
func addOutputFlag(cmd *cobra.Command, p *string, def string) {
	cmd.Flags().StringVarP(p, "output", "o", def, "output format: json or table")
}

func checkFormat(f string) error {
	if f != formatJSON && f != formatTable {
		return usagef("output format %q: want json or table", f)
	}
	return nil
}

// recordJSON is one line of read and tail output: the API's record, so
// `strata read A | strata append B` copies a stream, locally or over HTTP.
type recordJSON = api.Record

const encodingBase64 = api.EncodingBase64

func toRecordJSON(r *event.Record) recordJSON { return api.FromRecord(r) }

// recordWriter prints records one by one.
type recordWriter interface {
	Write(r *event.Record) error
	Flush() error
}

// newRecordWriter returns a writer for format. live output (tail) is flushed
// after every record so a pipe sees each record as it arrives.
func newRecordWriter(w io.Writer, format string, live bool) recordWriter {
	if format == formatTable {
		return newTableWriter(w, live)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonWriter{bw: bw, enc: enc, live: live}
}

type jsonWriter struct {
	bw   *bufio.Writer
	enc  *json.Encoder
	live bool
}

func (j *jsonWriter) Write(r *event.Record) error {
	if err := j.enc.Encode(toRecordJSON(r)); err != nil {
		return err
	}
	if j.live {
		return j.bw.Flush()
	}
	return nil
}

func (j *jsonWriter) Flush() error { return j.bw.Flush() }

const (
	tableDataWidth = 60
	// tableBlock bounds how many rows tabwriter holds: it aligns only what it
	// holds, and holding a whole multi-million-record read would cost memory
	// in proportion to the log.
	tableBlock = 1000
)

// liveWidths pad the cells of live tables so rows flushed one at a time
// still line up with the header for typical names.
var liveWidths = []int{8, 20, 7, 20, 24}

type tableWriter struct {
	tw   *tabwriter.Writer
	live bool
	rows int
}

func newTableWriter(w io.Writer, live bool) *tableWriter {
	t := &tableWriter{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), live: live}
	t.row("POSITION", "STREAM", "VERSION", "TYPE", "TIME", "DATA")
	return t
}

func (t *tableWriter) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			t.tw.Write([]byte{'\t'})
		}
		if t.live && i < len(liveWidths) {
			c = fmt.Sprintf("%-*s", liveWidths[i], c)
		}
		io.WriteString(t.tw, c)
	}
	t.tw.Write([]byte{'\n'})
}

func (t *tableWriter) Write(r *event.Record) error {
	t.row(
		strconv.FormatUint(r.Position, 10),
		r.Stream,
		strconv.FormatUint(r.Version, 10),
		r.Type,
		r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		tableData(r.Data),
	)
	t.rows++
	if t.live || t.rows%tableBlock == 0 {
		return t.tw.Flush()
	}
	return nil
}

func (t *tableWriter) Flush() error { return t.tw.Flush() }

// tableData renders a payload on one line, cut to tableDataWidth runes.
func tableData(b []byte) string {
	var s string
	if json.Valid(b) {
		var buf bytes.Buffer
		json.Compact(&buf, b) // cannot fail: b is valid
		s = buf.String()
	} else if len(b) > 0 {
		s = "base64:" + base64.StdEncoding.EncodeToString(b)
	}
	if utf8.RuneCountInString(s) <= tableDataWidth {
		return s
	}
	r := []rune(s)
	return string(r[:tableDataWidth-1]) + "…"
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeKV prints a two-column report.
func writeKV(w io.Writer, rows [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// formatBytes prints n in binary units with the exact count beside it.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d)", float64(n)/float64(div), "KMGTPE"[exp], n)
}
