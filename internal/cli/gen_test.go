package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// strata gen orders into a real log, then stats and read see what it wrote.
func TestE2EGenOrders(t *testing.T) {
	run := cli(t, t.TempDir()+"/log")
	r := run(ExitOK, "gen", "orders", "--events", "5000", "--customers", "100", "--writers", "4", "--durability", "none", "-o", "json")
	var g genOrdersJSON
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if g.Events < 5000 || g.Events > 5005 || g.Orders < 1 || g.LastPosition != uint64(g.Events) || g.EventsPerSec <= 0 {
		t.Fatalf("gen orders: %+v", g)
	}

	var st statsJSON
	if err := json.Unmarshal([]byte(run(ExitOK, "stats", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Head != uint64(g.Events) || st.Streams != uint64(g.Orders) {
		t.Errorf("stats %+v after writing %+v", st, g)
	}
	r = run(ExitOK, "read", "--type", "order.created")
	if n := strings.Count(r.stdout, "\n"); n != g.Orders {
		t.Errorf("read --type order.created: %d lines, want %d", n, g.Orders)
	}
	r = run(ExitOK, "orders", "show", "g1")
	if !strings.Contains(r.stdout, `"customer":"cust-`) {
		t.Errorf("orders show g1: %s", r.stdout)
	}

	// The table output, and a second run into the same log fails on its
	// first order instead of mixing two histories.
	other := cli(t, t.TempDir()+"/log")
	r = other(ExitOK, "gen", "orders", "--events", "10", "--durability", "none")
	for _, want := range []string{"events", "orders", "last position", "elapsed", "events/s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table output has no %q:\n%s", want, r.stdout)
		}
	}
	r = other(ExitFailure, "gen", "orders", "--events", "10", "--durability", "none")
	if !strings.Contains(r.stderr, "wrong expected version") {
		t.Errorf("second gen: %s", r.stderr)
	}
}

func TestGenOrdersFlagChecks(t *testing.T) {
	for _, args := range [][]string{
		{"gen", "orders", "--events", "0"},
		{"gen", "orders", "--customers", "0"},
		{"gen", "orders", "--writers", "-1"},
		{"gen", "orders", "-o", "yaml"},
		{"gen", "orders", "extra"},
	} {
		f := newFakeEnv()
		if r := f.run(t, "", args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, ExitUsage)
		}
		if len(f.opened) != 0 {
			t.Errorf("%v opened the log", args)
		}
	}
}
