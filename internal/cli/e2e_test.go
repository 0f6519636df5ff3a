package cli

// End-to-end tests: the real command tree over the real eventlog in a
// temporary directory.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// execRoot runs the strata root command the way main does, with DefaultEnv.
func execRoot(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(DefaultEnv())
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	cmd, err := root.ExecuteContextC(ctx)
	code := report(&errOut, cmd, err)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// cli returns a function running strata with --data dir that fails the
// test unless the exit code is wantCode.
func cli(t *testing.T, dir string) func(wantCode int, args ...string) result {
	return func(wantCode int, args ...string) result {
		t.Helper()
		r := execRoot(t, context.Background(), "", append(args, "--data", dir)...)
		if r.code != wantCode {
			t.Fatalf("%v: exit %d (want %d): %s%s", args, r.code, wantCode, r.stdout, r.stderr)
		}
		return r
	}
}

func TestE2EAppendReadStatsVerify(t *testing.T) {
	dir := t.TempDir() + "/log"
	ctx := context.Background()
	ok := func(r result) result {
		t.Helper()
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		return r
	}

	r := ok(execRoot(t, ctx, `[{"type":"order.placed","data":{"sku":"A1"}},{"type":"order.paid","data":{"amount":"9.90"},"metadata":{"by":"cli"}}]`,
		"append", "orders-1", "--data", dir, "--expect", "no-stream"))
	var res appendResultJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res != (appendResultJSON{Stream: "orders-1", Version: 2, FirstPosition: 1, LastPosition: 2}) {
		t.Errorf("append result %+v", res)
	}
	ok(execRoot(t, ctx, "{\"type\":\"user.joined\",\"data\":\"bob\"}\n", "append", "users-1", "--data", dir))

	// A conflicting append fails and writes nothing.
	r = execRoot(t, ctx, `{"type":"order.shipped"}`, "append", "orders-1", "--data", dir, "--expect", "1")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "wrong expected version") {
		t.Errorf("conflict: exit %d, stderr %q", r.code, r.stderr)
	}

	r = ok(execRoot(t, ctx, "", "read", "orders-1", "--data", dir))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("read orders-1: %d lines:\n%s", len(lines), r.stdout)
	}
	var rec recordJSON
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Position != 2 || rec.Version != 2 || rec.Type != "order.paid" ||
		string(rec.Data) != `{"amount":"9.90"}` || string(rec.Metadata) != `{"by":"cli"}` {
		t.Errorf("record %+v", rec)
	}
	if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
		t.Errorf("time %q: %v", rec.Time, err)
	}

	r = ok(execRoot(t, ctx, "", "read", "--data", dir, "--prefix", "users-"))
	if !strings.Contains(r.stdout, `"stream":"users-1"`) || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("read --prefix users-:\n%s", r.stdout)
	}

	r = ok(execRoot(t, ctx, "", "stats", "--data", dir, "-o", "json"))
	var st statsJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Head != 3 || st.Streams != 2 || st.Segments < 1 || st.Bytes <= 0 {
		t.Errorf("stats %+v", st)
	}

	r = ok(execRoot(t, ctx, "", "verify", "--data", dir, "-o", "json"))
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.Records != 3 || v.Head != 3 {
		t.Errorf("verify %+v", v)
	}
}

func TestE2EVerifyFindsAFlippedByte(t *testing.T) {
	dir := t.TempDir() + "/log"
	ctx := context.Background()
	var in strings.Builder
	for i := range 200 {
		fmt.Fprintf(&in, `{"type":"tick","data":{"i":%d}}`+"\n", i)
	}
	if r := execRoot(t, ctx, in.String(), "append", "ticks", "--data", dir); r.code != ExitOK {
		t.Fatalf("append: exit %d: %s", r.code, r.stderr)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v %v", segs, err)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x04
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	r := execRoot(t, ctx, "", "verify", "--data", dir)
	if r.code != ExitFailure {
		t.Fatalf("verify of a damaged log: exit %d, want %d (stdout %q)", r.code, ExitFailure, r.stdout)
	}
	out := r.stdout + r.stderr
	if !strings.Contains(out, filepath.Base(segs[0])) || !strings.Contains(out, "offset") {
		t.Fatalf("verify output names no segment and offset:\n%s", out)
	}
	// Opening refuses the log too, naming the same segment.
	r = execRoot(t, ctx, "", "stats", "--data", dir)
	if r.code != ExitFailure || !strings.Contains(r.stderr, filepath.Base(segs[0])) {
		t.Fatalf("stats of a damaged log: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestE2ETail(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if r := execRoot(t, context.Background(), `{"type":"a"}`+"\n"+`{"type":"b"}`, "append", "s", "--data", dir); r.code != ExitOK {
		t.Fatalf("append: exit %d: %s", r.code, r.stderr)
	}
	r := execRoot(t, ctx, "", "tail", "--data", dir, "--after", "1")
	if r.code != ExitOK {
		t.Fatalf("tail: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"position":2`) || strings.Contains(r.stdout, `"position":1,`) {
		t.Errorf("tail --after 1:\n%s", r.stdout)
	}
}

func TestE2EBench(t *testing.T) {
	ctx := context.Background()
	r := execRoot(t, ctx, "", "bench", "append", "--dir", t.TempDir(), "--events", "2000", "--writers", "4", "--durability", "none")
	if r.code != ExitOK || !strings.Contains(r.stdout, "events/s") {
		t.Errorf("bench append: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = execRoot(t, ctx, "", "bench", "read", "--dir", t.TempDir(), "--events", "5000", "-o", "json")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"events":5000`) {
		t.Errorf("bench read: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// lineCounter cancels once it has seen want lines.
type lineCounter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   int
	cancel context.CancelFunc
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "\n") >= w.want {
		w.cancel()
	}
	return len(p), nil
}

// A writer process holds the log open (and locked); the reading commands
// follow it instead of failing.
func TestE2EReadingCommandsFollowALogInUse(t *testing.T) {
	dir := t.TempDir() + "/log"
	l, err := eventlog.Open(dir, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bg := context.Background()
	if _, err := l.Append(bg, "orders-1", store.NoStream, event.Event{Type: "order.placed", Data: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}

	r := execRoot(t, bg, "", "read", "orders-1", "--data", dir)
	if r.code != ExitOK || !strings.Contains(r.stdout, `"order.placed"`) {
		t.Fatalf("read beside a writer: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	r = execRoot(t, bg, `{"type":"x"}`, "append", "orders-1", "--data", dir)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "another process") {
		t.Fatalf("append beside a writer: exit %d, %q", r.code, r.stderr)
	}

	// tail prints the record already there and the ones appended while it runs.
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	out := &lineCounter{want: 3, cancel: cancel}
	root := NewRootCommand(DefaultEnv())
	root.SetArgs([]string{"tail", "--data", dir})
	root.SetOut(out)
	root.SetErr(out)
	done := make(chan error, 1)
	go func() { _, err := root.ExecuteContextC(ctx); done <- err }()
	for i := 2; i <= 3; i++ {
		if _, err := l.Append(bg, "orders-1", store.Any, event.Event{Type: "order.changed"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("tail did not print the appends within the timeout:\n%s", out.buf.String())
	}
	lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
	for i, line := range lines {
		if !strings.Contains(line, fmt.Sprintf(`"position":%d,`, i+1)) {
			t.Fatalf("tail line %d = %s", i, line)
		}
	}
}
