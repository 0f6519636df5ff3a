package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// lines joins JSON lines into a command's input or expected output.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// runWindowCmd runs strata window over stdin and fails the test unless it exits
// with wantCode.
func runWindowCmd(t *testing.T, wantCode int, stdin string, args ...string) result {
	t.Helper()
	r := newFakeEnv().run(t, stdin, append([]string{"window"}, args...)...)
	if r.code != wantCode {
		t.Fatalf("window %v: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", args, r.code, wantCode, r.stdout, r.stderr)
	}
	return r
}

// windowLine is one line of strata window's output.
type windowLine struct {
	Key         string          `json:"key"`
	WindowStart json.RawMessage `json:"window_start"`
	WindowEnd   json.RawMessage `json:"window_end"`
	Value       json.RawMessage `json:"value"`
	Firing      *int            `json:"firing"`
	Late        json.RawMessage `json:"late"`
	Watermark   json.RawMessage `json:"watermark"`
}

func parseWindowOutput(t *testing.T, out string) []windowLine {
	t.Helper()
	var ls []windowLine
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		var w windowLine
		if err := dec.Decode(&w); err != nil {
			t.Fatalf("output line %d %q: %v", i+1, l, err)
		}
		ls = append(ls, w)
	}
	return ls
}

// The burst that motivates lookback windows: 11 transactions of u1 within
// 10 s, straddling a minute boundary. Tumbling minutes never see more than
// 10 in one window; sliding windows and lookback do see all 11.
func TestWindowReferenceBurst(t *testing.T) {
	var in strings.Builder
	for _, ts := range []int64{55000, 56000, 57000, 58000, 59000, 59999, 60000, 61000, 62000, 63000, 65000} {
		fmt.Fprintf(&in, `{"key":"u1","ts":%d}`+"\n", ts)
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   func(max int64) bool
		want string
	}{
		{"tumbling", []string{"--type", "tumbling", "--size", "60s"}, func(m int64) bool { return m <= 10 }, "at most 10"},
		{"sliding", []string{"--type", "sliding", "--size", "60s", "--slide", "1s"}, func(m int64) bool { return m == 11 }, "11"},
		{"lookback", []string{"--type", "lookback", "--size", "60s"}, func(m int64) bool { return m == 11 }, "11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWindowCmd(t, ExitOK, in.String(), append(tc.args, "--agg", "count")...)
			out := parseWindowOutput(t, r.stdout)
			if len(out) == 0 {
				t.Fatal("no output")
			}
			top := int64(-1)
			for _, l := range out {
				if l.Key != "u1" {
					t.Fatalf("key %q in %+v", l.Key, l)
				}
				var v int64
				if err := json.Unmarshal(l.Value, &v); err != nil {
					t.Fatalf("value %s: %v", l.Value, err)
				}
				top = max(top, v)
			}
			if !tc.ok(top) {
				t.Errorf("largest count %d, want %s\n%s", top, tc.want, r.stdout)
			}
		})
	}
}

func TestWindowOutputs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		input string
		want  string
	}{
		{
			// RFC 3339 in gives RFC 3339 out, in UTC with milliseconds;
			// finer digits are dropped (59.9999 is still in the first
			// minute, and the watermark 59.998 has not fired it when
			// 00:00:30Z, written in +01:00, arrives).
			name: "rfc3339",
			args: []string{"--type", "tumbling", "--size", "1m"},
			input: lines(
				`{"key":"u1","ts":"2025-01-01T00:00:59.9999Z"}`,
				`{"key":"u1","ts":"2025-01-01T01:00:30+01:00"}`,
			),
			want: lines(
				`{"key":"u1","window_start":"2025-01-01T00:00:00.000Z","window_end":"2025-01-01T00:01:00.000Z","value":2}`,
			),
		},
		{
			name: "rfc3339 lookback",
			args: []string{"--type", "lookback", "--size", "1s", "--emit-watermarks"},
			input: lines(
				`{"key":"u1","ts":"2025-01-01T00:00:00.5Z"}`,
				`{"key":"u1","ts":"2025-01-01T00:00:01.2Z"}`,
			),
			want: lines(
				`{"watermark":"2025-01-01T00:00:00.499Z"}`,
				`{"key":"u1","window_start":"2024-12-31T23:59:59.501Z","window_end":"2025-01-01T00:00:00.501Z","value":1}`,
				`{"watermark":"2025-01-01T00:00:01.199Z"}`,
				`{"key":"u1","window_start":"2025-01-01T00:00:00.201Z","window_end":"2025-01-01T00:00:01.201Z","value":2}`,
			),
		},
		{
			// The input's watermarks, lateness 10 s, discarding: the late
			// event at 9000 fires [0, 10000) again with only itself
			// ("firing":1); the one at 3000 comes after the window's
			// cleanup (W 20999 ≥ 9999 + 10000) and is reported late.
			name: "lateness discarding",
			args: []string{"--type", "tumbling", "--size", "10s", "--lateness", "10s", "--mode", "discarding", "--agg", "sum"},
			input: lines(
				`{"key":"a","value":1,"ts":1000}`,
				`{"key":"a","value":2,"ts":5000}`,
				`{"watermark":10999}`,
				`{"key":"a","value":4,"ts":9000}`,
				`{"watermark":20999}`,
				`{ "key": "a", "value": 8, "ts": 3000 }`,
			),
			want: lines(
				`{"key":"a","window_start":0,"window_end":10000,"value":3}`,
				`{"key":"a","window_start":0,"window_end":10000,"value":4,"firing":1}`,
				`{"late":{"key":"a","value":8,"ts":3000}}`,
			),
		},
		{
			name: "lateness accumulating",
			args: []string{"--type", "tumbling", "--size", "10s", "--lateness", "10s", "--agg", "sum"},
			input: lines(
				`{"key":"a","value":1,"ts":1000}`,
				`{"key":"a","value":2,"ts":5000}`,
				`{"watermark":10999}`,
				`{"key":"a","value":4,"ts":9000}`,
			),
			want: lines(
				`{"key":"a","window_start":0,"window_end":10000,"value":3}`,
				`{"key":"a","window_start":0,"window_end":10000,"value":7,"firing":1}`,
			),
		},
		{
			// Generated watermarks (max ts − 1 s − 1) printed each time
			// they advance, after the results they fire; not the final +∞.
			name: "emit watermarks",
			args: []string{"--type", "tumbling", "--size", "10s", "--max-out-of-order", "1s", "--emit-watermarks"},
			input: lines(
				`{"key":"a","ts":1000}`,
				`{"key":"b","ts":3000}`,
				`{"key":"a","ts":2500}`,
				`{"key":"a","ts":12000}`,
			),
			want: lines(
				`{"watermark":-1}`,
				`{"watermark":1999}`,
				`{"key":"a","window_start":0,"window_end":10000,"value":2}`,
				`{"key":"b","window_start":0,"window_end":10000,"value":1}`,
				`{"watermark":10999}`,
				`{"key":"a","window_start":10000,"window_end":20000,"value":1}`,
			),
		},
		{
			// Generated watermarks until the first watermark line (500,
			// behind the generated 999, so no change), then only the
			// input's: the event at 15000 does not fire [0, 10000).
			name: "explicit watermarks take over",
			args: []string{"--type", "tumbling", "--size", "10s", "--emit-watermarks"},
			input: lines(
				`{"key":"a","ts":1000}`,
				`{"watermark":500}`,
				`{"key":"a","ts":15000}`,
				`{"watermark":9999}`,
				`{"key":"a","ts":16000}`,
			),
			want: lines(
				`{"watermark":999}`,
				`{"key":"a","window_start":0,"window_end":10000,"value":1}`,
				`{"watermark":9999}`,
				`{"key":"a","window_start":10000,"window_end":20000,"value":2}`,
			),
		},
		{
			name: "exact decimal sum",
			args: []string{"--type", "tumbling", "--size", "10s", "--agg", "sum"},
			input: lines(
				`{"key":"a","value":"0.1","ts":1}`,
				`{"key":"a","value":"0.2","ts":2}`,
			),
			want: lines(`{"key":"a","window_start":0,"window_end":10000,"value":0.3}`),
		},
		{
			name: "avg",
			args: []string{"--type", "session", "--gap", "1s", "--agg", "avg"},
			input: lines(
				`{"key":"a","value":1,"ts":1}`,
				`{"key":"a","value":"2","ts":2}`,
				`{"key":"a","value":2.000,"ts":3}`,
			),
			want: lines(`{"key":"a","window_start":1,"window_end":1003,"value":1.6666666666666667}`),
		},
		{
			// Keys are any scalar's text (1 and "1" are one key); distinct
			// compares values by their JSON text ("1" and 1 differ); list
			// prints the raw values, compacted, in time order.
			name: "distinct",
			args: []string{"--type", "tumbling", "--size", "10s", "--agg", "distinct", "--max-out-of-order", "10"},
			input: lines(
				`{"key":1,"value":{"x": [1, 2]},"ts":5}`,
				`{"key":1,"value":"1","ts":2}`,
				`{"key":"1","value":1,"ts":3}`,
				`{"key":"1","value":1,"ts":4}`,
			),
			want: lines(`{"key":"1","window_start":0,"window_end":10000,"value":3}`),
		},
		{
			name: "list",
			args: []string{"--type", "tumbling", "--size", "10s", "--agg", "list", "--max-out-of-order", "10", "--value", "v", "--key", "k", "--ts", "t"},
			input: lines(
				`{"k":true,"v":{"x": [1, 2]},"t":5}`,
				``,
				`{"k":true,"v":"1","t":2}`,
				`{"k":true,"v":null,"t":3}`,
			),
			want: lines(`{"key":"true","window_start":0,"window_end":10000,"value":["1",null,{"x":[1,2]}]}`),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWindowCmd(t, ExitOK, tc.input, tc.args...)
			if r.stdout != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tc.want)
			}
			parseWindowOutput(t, r.stdout)
		})
	}
}

func TestWindowErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		input  string
		code   int
		stderr string // a substring of stderr
		stdout string
	}{
		{
			// Lines 1 and 2 fire [0, 10000) (watermark 19999); line 3
			// stops the run with that output printed, and nothing after.
			name: "bad JSON on line 3",
			args: []string{"--type", "tumbling", "--size", "10s"},
			input: lines(
				`{"key":"a","ts":1}`,
				`{"key":"a","ts":20000}`,
				`{"key":"a",ts:3}`,
				`{"key":"a","ts":40000}`,
			),
			code:   ExitFailure,
			stderr: "strata: line 3: invalid JSON",
			stdout: lines(`{"key":"a","window_start":0,"window_end":10000,"value":1}`),
		},
		{
			name:   "unknown agg",
			args:   []string{"--type", "tumbling", "--size", "10s", "--agg", "median"},
			code:   ExitUsage,
			stderr: `--agg "median": want one of count, sum, min, max, avg, distinct, list`,
		},
		{
			name:   "sliding without slide",
			args:   []string{"--type", "sliding", "--size", "10s"},
			code:   ExitUsage,
			stderr: "invalid configuration: slide is required for sliding windows",
		},
		{
			name:   "every config problem",
			args:   []string{"--type", "tumbling", "--gap", "1s"},
			code:   ExitUsage,
			stderr: "size is required for tumbling windows\nstream: invalid configuration: gap applies only to session windows",
		},
		{
			name:   "no type",
			args:   []string{"--size", "10s"},
			code:   ExitUsage,
			stderr: "--type is required",
		},
		{
			name:   "fraction of a millisecond",
			args:   []string{"--type", "tumbling", "--size", "1500us"},
			code:   ExitUsage,
			stderr: "not a whole number of milliseconds",
		},
		{
			name:   "missing value",
			args:   []string{"--type", "tumbling", "--size", "10s", "--agg", "sum"},
			input:  lines(`{"key":"a","value":1,"ts":1}`, `{"key":"a","ts":2}`),
			code:   ExitFailure,
			stderr: `strata: line 2: missing "value"`,
		},
		{
			name:   "missing ts",
			args:   []string{"--type", "tumbling", "--size", "10s", "--ts", "time"},
			input:  lines(`{"key":"a","ts":1}`),
			code:   ExitFailure,
			stderr: `strata: line 1: missing "time"`,
		},
		{
			name:   "bad ts",
			args:   []string{"--type", "tumbling", "--size", "10s"},
			input:  lines(`{"key":"a","ts":1.5}`),
			code:   ExitFailure,
			stderr: `strata: line 1: "ts": 1.5: want epoch milliseconds`,
		},
		{
			name:   "missing key",
			args:   []string{"--type", "tumbling", "--size", "10s"},
			input:  lines(`{"user":"a","ts":1}`),
			code:   ExitFailure,
			stderr: `strata: line 1: missing "key"`,
		},
		{
			name:   "not an object",
			args:   []string{"--type", "tumbling", "--size", "10s"},
			input:  lines(`[1]`),
			code:   ExitFailure,
			stderr: `strata: line 1: want a JSON object`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWindowCmd(t, tc.code, tc.input, tc.args...)
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.stderr)
			}
			if r.stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tc.stdout)
			}
		})
	}
}

// Input and output longer than the buffers: every result comes out.
func TestWindowManyLines(t *testing.T) {
	var in bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&in, `{"key":"k%d","ts":%d,"value":"%d.5"}`+"\n", i%7, i*10, i)
	}
	r := runWindowCmd(t, ExitOK, in.String(), "--type", "tumbling", "--size", "1s", "--agg", "max")
	out := parseWindowOutput(t, r.stdout)
	if len(out) != 200*7 {
		t.Fatalf("%d results, want %d", len(out), 200*7)
	}
	if l := out[len(out)-1]; string(l.WindowEnd) != "200000" || !strings.HasSuffix(string(l.Value), ".5") {
		t.Errorf("last result %+v", l)
	}
}

// --spans: one lookback engine, a window per span for each event.
func TestWindowLookbackSpans(t *testing.T) {
	in := lines(`{"key":"u1","ts":1000,"value":"10"}`, `{"key":"u1","ts":61000,"value":"5"}`)
	r := runWindowCmd(t, ExitOK, in, "--type", "lookback", "--size", "60s", "--spans", "2m", "--agg", "sum")
	want := lines(
		`{"key":"u1","window_start":-58999,"window_end":1001,"value":10}`,
		`{"key":"u1","window_start":-118999,"window_end":1001,"value":10}`,
		`{"key":"u1","window_start":1001,"window_end":61001,"value":5}`,
		`{"key":"u1","window_start":-58999,"window_end":61001,"value":15}`,
	)
	if r.stdout != want {
		t.Fatalf("got\n%s\nwant\n%s", r.stdout, want)
	}
	runWindowCmd(t, ExitUsage, in, "--type", "tumbling", "--size", "60s", "--spans", "2m")
	runWindowCmd(t, ExitUsage, in, "--type", "lookback", "--size", "60s", "--spans", "2m,x")
}
