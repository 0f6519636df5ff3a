package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every rebuild the benchmark times builds the same read model: as many
// orders and customers as the generated history has, whatever the
// projection (Go, YAML) or the number of workers.
func TestBenchRebuildBuildsTheSameModelEachTime(t *testing.T) {
	r := cli(t, t.TempDir())(0, "bench", "rebuild", "--events", "4000", "--customers", "50", "--workers", "1,3", "--dir", t.TempDir(), "-o", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 { // the read-only floor, then 2 projections × 2 worker counts
		t.Fatalf("%d runs:\n%s", len(lines), r.stdout)
	}
	var floor benchRebuildRun
	if err := json.Unmarshal([]byte(lines[0]), &floor); err != nil || floor.Projection != "read only" || floor.Events < 4000 {
		t.Fatalf("first row %+v, %v", floor, err)
	}
	var first benchRebuildRun
	for i, l := range lines[1:] {
		var run benchRebuildRun
		if err := json.Unmarshal([]byte(l), &run); err != nil {
			t.Fatal(err)
		}
		if run.Events < 4000 || run.Orders == 0 || run.Customers == 0 || run.Customers > 50 || run.Rate <= 0 {
			t.Fatalf("run %+v", run)
		}
		if i == 0 {
			first = run
		} else if run.Orders != first.Orders || run.Customers != first.Customers || run.Events != first.Events {
			t.Fatalf("run %+v built another model than %+v", run, first)
		}
	}
	if !strings.Contains(r.stderr, "generated") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestBenchRebuildFlagChecks(t *testing.T) {
	run := cli(t, t.TempDir())
	for _, args := range [][]string{
		{"--workers", "0"},
		{"--workers", "a"},
		{"--projection", "java"},
		{"--events", "0"},
	} {
		r := run(2, append([]string{"bench", "rebuild"}, args...)...)
		if !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "")) {
			t.Errorf("%v: %s", args, r.stderr)
		}
	}
}
