package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/stream"
)

// windowOpts are strata window's flags.
type windowOpts struct {
	keyField, valueField, tsField string
	kind, mode, agg               string
	size, slide, gap, offset      msDuration
	lateness, maxOutOfOrder       msDuration
	spans                         msDurations
	emitWatermarks                bool
}

// windowAggs are --agg's names, in the order help lists them.
var windowAggs = []string{"count", "sum", "min", "max", "avg", "distinct", "list"}

func newWindowCmd(a *app) *cobra.Command {
	var o windowOpts
	cmd := &cobra.Command{
		Use:   "window",
		Short: "Window JSON events from stdin and print each window's result (try windowed logic without Go)",
		Long: `Window JSON events read from stdin with the stream engine and print each
window's result on stdout, one JSON object a line. The semantics are Apache
Flink's event-time windows; docs/window.md has worked examples.

Input: one JSON object a line (blank lines are skipped).
  {"key":"u1","value":12.5,"ts":3999}   an event; field names set by --key,
                                        --value and --ts
  {"watermark":999}                     a watermark: no more events with
                                        ts ≤ 999 (an object with a
                                        "watermark" member and no ts member)
ts is epoch milliseconds (a JSON integer) or an RFC 3339 string
("2025-01-01T00:00:59.999Z"; digits below the millisecond are dropped). The
key is a JSON string, or any other scalar, whose JSON text is then the key
(42 and "42" are the same key). The value is what --agg reads: a number or a
numeric string for sum, min, max and avg (exact decimals: "0.1" + "0.2" is
0.3); any JSON value for distinct (compared by its JSON text, so "1" and 1
differ) and list; ignored by count, where it may be absent.

Watermarks: until the first watermark line, the watermark after each event is
the largest ts so far − --max-out-of-order − 1 (Flink's bounded
out-of-orderness): with the default 0, an event older than the newest one is
late if its window has already fired. From the first watermark line on, only
the input's watermark lines move the watermark and --max-out-of-order is
ignored. At end of input the watermark goes to +∞, which fires every window
still open.

Output, one JSON object a line, in the order things happen:
  {"key":"u1","window_start":0,"window_end":60000,"value":6}
      a window fired; windows are [window_start, window_end), and a lookback
      window at ts t is [t − size + 1, t + 1). "firing":N is added when N > 0:
      the N-th time a late event (within --lateness) made the window fire
      again. value is an integer for count and distinct, a JSON number with
      the exact decimal digits for sum, min, max and avg (avg keeps at most
      16 decimals), and the array of the raw values in time order for list.
  {"late":{...the input event...}}
      an event later than the allowed lateness: it was not windowed.
  {"watermark":W}
      with --emit-watermarks, each time the watermark advances, after the
      results it fired; the final +∞ is not printed.
Timestamps are printed in the form of the input's first timestamp: epoch
milliseconds, or RFC 3339 in UTC with milliseconds
("2025-01-01T00:01:00.000Z"). The key is always printed as a JSON string.

Durations (--size, --slide, --gap, --offset, --lateness, --max-out-of-order)
are Go durations ("60s", "1m30s", "500ms") or whole milliseconds ("60000").

A malformed line (not a JSON object, no key or ts, a bad ts or value) stops
the command with exit code 1 and "line N: …", after printing everything the
lines before it produced.`,
		Example: `  # more than 10 transactions in any 60 s (a tumbling window misses a burst across its boundary)
  strata window --type lookback --size 60s --agg count < transactions.jsonl
  strata window --type tumbling --size 1m --agg sum --key account --value amount --ts time < payments.jsonl
  strata window --type sliding --size 10s --slide 1s --agg avg --max-out-of-order 2s < readings.jsonl
  strata window --type session --gap 30m --agg list --emit-watermarks < clicks.jsonl
  strata window --type tumbling --size 1m --lateness 5m --mode discarding < events-with-watermarks.jsonl`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			cfg, err := o.config()
			if err != nil {
				return err
			}
			return runWindow(cmd.InOrStdin(), cmd.OutOrStdout(), cfg, &o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.kind, "type", "", "window type: tumbling, sliding, session or lookback (required)")
	f.Var(&o.size, "size", "window length (tumbling, sliding), or how far back a lookback window reaches, its event's instant included")
	f.Var(&o.spans, "spans", "more lookback spans over the same events, comma-separated (--size 60s --spans 5m): each event fires one window per span, --size's first")
	f.Var(&o.slide, "slide", "how far apart sliding windows start (at most --size)")
	f.Var(&o.gap, "gap", "session gap: events further apart are in different sessions")
	f.Var(&o.offset, "offset", "shift of tumbling and sliding windows' alignment (windows start at offset + k×slide)")
	f.Var(&o.lateness, "lateness", "allowed lateness: how long after firing a window still takes late events, firing again for each")
	f.StringVar(&o.mode, "mode", "accumulating", "what a window fired again reports: accumulating (everything so far) or discarding (only what arrived since its last firing)")
	f.Var(&o.maxOutOfOrder, "max-out-of-order", "how far behind the newest ts events may arrive before their windows fire (the generated watermark's bound); ignored from the input's first watermark line on")
	f.StringVar(&o.agg, "agg", "count", "aggregate: "+strings.Join(windowAggs, ", "))
	f.StringVar(&o.keyField, "key", "key", "input field holding the key")
	f.StringVar(&o.valueField, "value", "value", "input field holding the value")
	f.StringVar(&o.tsField, "ts", "ts", "input field holding the event time")
	f.BoolVar(&o.emitWatermarks, "emit-watermarks", false, `print {"watermark":W} each time the watermark advances`)
	return cmd
}

// config checks the flags and returns the engine's configuration. Every
// problem is a usage error; the engine's own checks are reported as they
// are (they list every problem at once).
func (o *windowOpts) config() (stream.Config, error) {
	if o.kind == "" {
		return stream.Config{}, usagef("--type is required: tumbling, sliding, session or lookback")
	}
	kind, err := stream.ParseKind(o.kind)
	if err != nil {
		return stream.Config{}, &usageError{err}
	}
	mode, err := stream.ParseMode(o.mode)
	if err != nil {
		return stream.Config{}, &usageError{err}
	}
	found := false
	for _, name := range windowAggs {
		found = found || name == o.agg
	}
	if !found {
		return stream.Config{}, usagef("--agg %q: want one of %s", o.agg, strings.Join(windowAggs, ", "))
	}
	if o.maxOutOfOrder < 0 || int64(o.maxOutOfOrder) > stream.MaxDuration {
		return stream.Config{}, usagef("--max-out-of-order %d ms outside 0..%d", o.maxOutOfOrder, stream.MaxDuration)
	}
	for _, f := range []struct{ flag, name string }{{"--key", o.keyField}, {"--value", o.valueField}, {"--ts", o.tsField}} {
		if f.name == "" {
			return stream.Config{}, usagef("%s must not be empty", f.flag)
		}
	}
	cfg := stream.Config{
		Kind:     kind,
		Size:     int64(o.size),
		Slide:    int64(o.slide),
		Gap:      int64(o.gap),
		Offset:   int64(o.offset),
		Lateness: int64(o.lateness),
		Mode:     mode,
		Spans:    o.spans,
	}
	if err := cfg.Validate(); err != nil {
		return stream.Config{}, &usageError{err}
	}
	return cfg, nil
}

// msDuration is a duration flag in milliseconds: a Go duration ("60s",
// "500ms") or a plain integer of milliseconds.
type msDuration int64

func (d *msDuration) String() string {
	if *d == 0 {
		return "0"
	}
	return (time.Duration(*d) * time.Millisecond).String()
}

func (d *msDuration) Type() string { return "duration" }

func (d *msDuration) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d = msDuration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: want one such as 60s, 1m30s or 500ms, or whole milliseconds", s)
	}
	if v%time.Millisecond != 0 {
		return fmt.Errorf("%q is not a whole number of milliseconds", s)
	}
	*d = msDuration(v.Milliseconds())
	return nil
}

// msDurations is a list of msDuration flags, comma-separated or repeated.
type msDurations []int64

func (d *msDurations) String() string {
	parts := make([]string, len(*d))
	for i, v := range *d {
		m := msDuration(v)
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

func (d *msDurations) Type() string { return "durations" }

func (d *msDurations) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		var m msDuration
		if err := m.Set(strings.TrimSpace(part)); err != nil {
			return err
		}
		*d = append(*d, int64(m))
	}
	return nil
}

// runWindow picks the engine's types for --agg and runs it over in.
func runWindow(in io.Reader, out io.Writer, cfg stream.Config, o *windowOpts) error {
	switch o.agg {
	case "count":
		return windowWith(in, out, cfg, o, stream.Count[struct{}]{}, valueCodec[struct{}, int64]{
			parse:  nil,
			format: appendInt,
		})
	case "sum":
		return windowWith(in, out, cfg, o, stream.Sum{}, decCodec)
	case "min":
		return windowWith(in, out, cfg, o, stream.Min{}, decCodec)
	case "max":
		return windowWith(in, out, cfg, o, stream.Max{}, decCodec)
	case "avg":
		return windowWith(in, out, cfg, o, stream.Avg{}, decCodec)
	case "distinct":
		return windowWith(in, out, cfg, o, stream.Distinct[string]{}, valueCodec[string, int64]{
			parse:  rawText,
			format: appendInt,
		})
	case "list":
		return windowWith(in, out, cfg, o, stream.List[string]{}, valueCodec[string, []stream.Elem[string]]{
			parse:  rawText,
			format: appendRawList,
		})
	}
	return usagef("--agg %q: want one of %s", o.agg, strings.Join(windowAggs, ", "))
}

// valueCodec reads an event's value for an aggregator and writes its
// result. A nil parse means the aggregator ignores values (count).
type valueCodec[V, R any] struct {
	parse  func(raw json.RawMessage) (V, error)
	format func(b []byte, r R) []byte
}

var decCodec = valueCodec[num.Dec, num.Dec]{
	parse: func(raw json.RawMessage) (num.Dec, error) { return num.ParseJSON(raw) },
	format: func(b []byte, d num.Dec) []byte {
		// Dec's text never has an exponent or float rounding: a JSON
		// number with the exact digits.
		b, _ = d.AppendText(b)
		return b
	},
}

// rawText is a JSON value's compact text: distinct compares values by it,
// and list prints it back.
func rawText(raw json.RawMessage) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

func appendRawList(b []byte, elems []stream.Elem[string]) []byte {
	b = append(b, '[')
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.Value...)
	}
	return append(b, ']')
}

// tsForm is how the input writes timestamps, and so how output does.
type tsForm uint8

const (
	formUnknown tsForm = iota // no timestamp seen yet
	formMillis                // epoch milliseconds, a JSON integer
	formRFC3339               // an RFC 3339 string
)

// rfc3339Millis is how output writes RFC 3339 timestamps: UTC, always
// three decimals.
const rfc3339Millis = "2006-01-02T15:04:05.000Z07:00"

// windower feeds one engine from JSON lines and prints what it emits.
type windower[V, A, R any] struct {
	e     *stream.Engine[V, A, R]
	o     *windowOpts
	codec valueCodec[V, R]
	w     *bufio.Writer
	buf   []byte

	form      tsForm
	explicit  bool  // a watermark line was seen: only those move the watermark
	seen      bool  // an event was seen (maxTs is set)
	maxTs     int64 // the largest event time so far
	printedWM int64 // the last watermark printed (or the engine's initial one)
}

func windowWith[V, A, R any](in io.Reader, out io.Writer, cfg stream.Config, o *windowOpts, agg stream.Aggregator[V, A, R], codec valueCodec[V, R]) (err error) {
	e, err := stream.New(cfg, agg)
	if err != nil {
		return &usageError{err}
	}
	x := &windower[V, A, R]{e: e, o: o, codec: codec, w: bufio.NewWriterSize(out, 64<<10), printedWM: e.CurrentWatermark()}
	defer func() {
		// Whatever happened, what earlier lines produced reaches stdout.
		if ferr := x.w.Flush(); ferr != nil && err == nil {
			err = ferr
		}
	}()
	r := bufio.NewReaderSize(in, 64<<10)
	for n := 1; ; n++ {
		if r.Buffered() == 0 {
			// About to wait for input: a live pipe sees the results so far.
			if err := x.w.Flush(); err != nil {
				return err
			}
		}
		line, rerr := r.ReadBytes('\n')
		if len(line) > 0 {
			if err := x.line(line); err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read input: %w", rerr)
		}
	}
	x.e.Watermark(stream.EndOfInput)
	return x.emit()
}

// line takes one input line. It checks the whole line before it changes
// anything, so a bad line prints nothing.
func (x *windower[V, A, R]) line(line []byte) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	if line[0] != '{' {
		return errors.New("want a JSON object: an event or a watermark")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	tsRaw, hasTs := obj[x.o.tsField]
	if wmRaw, ok := obj["watermark"]; ok && !hasTs {
		w, form, err := parseEventTime(wmRaw)
		if err != nil {
			return fmt.Errorf("watermark: %w", err)
		}
		x.setForm(form)
		x.explicit = true
		x.e.Watermark(w)
		return x.emit()
	}

	keyRaw := obj[x.o.keyField]
	if isAbsent(keyRaw) {
		return fmt.Errorf("missing %q (the key; set the field with --key)", x.o.keyField)
	}
	key, err := keyText(keyRaw)
	if err != nil {
		return fmt.Errorf("%q: %w", x.o.keyField, err)
	}
	if isAbsent(tsRaw) {
		return fmt.Errorf("missing %q (the event time; set the field with --ts)", x.o.tsField)
	}
	ts, form, err := parseEventTime(tsRaw)
	if err != nil {
		return fmt.Errorf("%q: %w", x.o.tsField, err)
	}
	if ts < stream.MinTime || ts > stream.MaxTime {
		return fmt.Errorf("%q: %s: %w", x.o.tsField, tsRaw, stream.ErrTime)
	}
	var v V
	if x.codec.parse != nil {
		valRaw, ok := obj[x.o.valueField]
		if !ok {
			return fmt.Errorf("missing %q (the value --agg %s reads; set the field with --value)", x.o.valueField, x.o.agg)
		}
		if v, err = x.codec.parse(valRaw); err != nil {
			return fmt.Errorf("%q: %w", x.o.valueField, err)
		}
	}

	x.setForm(form)
	late, err := x.e.Event(key, ts, v)
	if err != nil {
		return err
	}
	if late {
		x.buf = append(x.buf[:0], `{"late":`...)
		x.buf = append(x.buf, compactJSON(line)...)
		x.buf = append(x.buf, "}\n"...)
		if _, err := x.w.Write(x.buf); err != nil {
			return err
		}
	}
	if !x.explicit {
		if !x.seen || ts > x.maxTs {
			x.seen, x.maxTs = true, ts
		}
		// Flink's BoundedOutOfOrdernessWatermarks. No overflow: maxTs ≥
		// MinTime and the bound ≤ MaxDuration.
		x.e.Watermark(x.maxTs - int64(x.o.maxOutOfOrder) - 1)
	}
	return x.emit()
}

func (x *windower[V, A, R]) setForm(f tsForm) {
	if x.form == formUnknown {
		x.form = f
	}
}

// emit prints the results that fired, then the watermark if it advanced.
func (x *windower[V, A, R]) emit() error {
	for _, r := range x.e.Ready() {
		b := append(x.buf[:0], `{"key":`...)
		b = appendJSONString(b, r.Key)
		b = append(b, `,"window_start":`...)
		b = x.appendTime(b, r.Window.Start)
		b = append(b, `,"window_end":`...)
		b = x.appendTime(b, r.Window.End)
		b = append(b, `,"value":`...)
		b = x.codec.format(b, r.Value)
		if r.Firing > 0 {
			b = append(b, `,"firing":`...)
			b = strconv.AppendUint(b, uint64(r.Firing), 10)
		}
		b = append(b, "}\n"...)
		x.buf = b
		if _, err := x.w.Write(b); err != nil {
			return err
		}
	}
	x.e.Advance()
	if wm := x.e.CurrentWatermark(); x.o.emitWatermarks && wm > x.printedWM && wm <= stream.MaxTime {
		// Beyond MaxTime is end of input (or as good as): not printed.
		x.printedWM = wm
		b := append(x.buf[:0], `{"watermark":`...)
		b = x.appendTime(b, wm)
		b = append(b, "}\n"...)
		x.buf = b
		if _, err := x.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (x *windower[V, A, R]) appendTime(b []byte, ms int64) []byte {
	if x.form == formRFC3339 {
		b = append(b, '"')
		b = time.UnixMilli(ms).UTC().AppendFormat(b, rfc3339Millis)
		return append(b, '"')
	}
	return strconv.AppendInt(b, ms, 10)
}

// parseEventTime reads a timestamp: a JSON integer of epoch milliseconds or an
// RFC 3339 string, to the millisecond (finer digits are dropped).
func parseEventTime(raw json.RawMessage) (int64, tsForm, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, 0, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: want an RFC 3339 time such as \"2025-01-01T00:00:00Z\", or epoch milliseconds (an integer)", raw)
		}
		return t.UnixMilli(), formRFC3339, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: want epoch milliseconds (an integer) or an RFC 3339 string", raw)
	}
	return n, formMillis, nil
}

func isAbsent(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// keyText is the engine's key for a JSON key: a string's contents, another
// scalar's JSON text.
func keyText(raw json.RawMessage) (string, error) {
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		return "", fmt.Errorf("%s: want a string or another JSON scalar", raw)
	}
	return string(raw), nil
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b // already checked valid by the caller
	}
	return buf.Bytes()
}

// appendJSONString appends s as a JSON string, without HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
