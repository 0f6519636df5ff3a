package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBenchPayloadIsJSONOfExactSize(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8, 9, 100, 4096} {
		p := benchPayload(n)
		if len(p) != n || !json.Valid(p) {
			t.Errorf("benchPayload(%d) = %q (%d bytes, valid %v)", n, p, len(p), json.Valid(p))
		}
	}
	if p := benchPayload(0); len(p) != 0 {
		t.Errorf("benchPayload(0) = %q", p)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 0.5); p != 50 {
		t.Errorf("p50 = %d", p)
	}
	if p := percentile(d, 0.99); p != 99 {
		t.Errorf("p99 = %d", p)
	}
	if p := percentile(d[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of none = %d", p)
	}
}

func TestBenchAppendSplitsWork(t *testing.T) {
	s := newMemStore()
	cfg := benchAppendConfig{Writers: 3, Events: 100, Batch: 7, Size: 10}
	res, err := benchAppend(context.Background(), s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.records) != 100 {
		t.Errorf("%d events appended, want 100", len(s.records))
	}
	// 34, 33, 33 events in batches of 7: 5 calls each.
	if res.Appends != 15 || s.calls != 15 {
		t.Errorf("appends %d, calls %d, want 15", res.Appends, s.calls)
	}
	if s.versions["bench-0"] != 34 || s.versions["bench-2"] != 33 {
		t.Errorf("stream versions %v", s.versions)
	}
	if res.P50 > res.P99 || res.Elapsed <= 0 {
		t.Errorf("result %+v", res)
	}
}

func TestBenchAppendStopsOnError(t *testing.T) {
	s := newMemStore()
	s.Close()
	_, err := benchAppend(context.Background(), s, benchAppendConfig{Writers: 4, Events: 1000, Batch: 1, Size: 10})
	if err == nil || !strings.Contains(err.Error(), "store: closed") {
		t.Errorf("err = %v", err)
	}
}

func TestBenchCommands(t *testing.T) {
	parent := t.TempDir()
	f := newFakeEnv()
	r := f.run(t, "", "bench", "append", "--dir", parent, "--writers", "2", "--events", "50", "--batch", "5", "--durability", "none", "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("bench append: exit %d: %s", r.code, r.stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%q: %v", r.stdout, err)
	}
	if out["events"] != 50.0 || out["appends"] != 10.0 || out["durability"] != "none" {
		t.Errorf("output %v", out)
	}
	if len(f.opened) != 1 || filepath.Dir(f.opened[0]) != parent {
		t.Errorf("opened %v, want a directory inside %s", f.opened, parent)
	}

	r = f.run(t, "", "bench", "read", "--dir", parent, "--events", "2500", "--size", "10")
	if r.code != ExitOK {
		t.Fatalf("bench read: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"events        2500\n", "second read", "events/s", "payload MB/s", "disk MB/s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The fill went through with SyncNone and the log was reopened to read.
	if len(f.opened) != 3 || f.opened[1] != f.opened[2] || f.opts[1].Durability.String() != "none" {
		t.Errorf("opened %v with %v", f.opened, f.opts)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("temporary logs left behind: %v", left)
	}
}

func TestBenchFlagChecks(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "append", "--writers", "0"},
		{"bench", "append", "--batch", "0"},
		{"bench", "append", "--events", "0"},
		{"bench", "read", "--events", "0"},
		{"bench", "read", "--size", "-1"},
	} {
		if r := newFakeEnv().run(t, "", args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, ExitUsage)
		}
	}
}
