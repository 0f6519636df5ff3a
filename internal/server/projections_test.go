package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/shopspring/decimal"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/projection"
)

// A query with min_position sees the write that returned that position
// (read-your-writes), and a projection still building its first version
// answers 503 with its progress and a Retry-After.
func TestQueryReadYourWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	l, err := eventlog.Open(dir+"/log", eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cat, err := projection.OpenCatalog(dir + "/readmodels")
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	src, err := os.ReadFile("../../examples/account_balances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := projection.ParseSpec(src)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- readmodels.Run(ctx, cat, l, []projection.Projection{p}, readmodels.RunOptions{}) }()
	ex, err := examples.New(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(New(Options{Store: l, Examples: ex, ReadModels: cat}))
	defer hs.Close()
	call := func(method, path, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return resp.StatusCode, resp.Header, m
	}
	// The runner serves its first version once it has caught up with the
	// (empty) log.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if code, _, st := call("GET", "/v1/projections/account_balances", ""); code == 200 && st["state"] == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("account_balances did not start serving within 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	call("POST", "/v1/bank/ada/open", `{"owner":"Ada"}`)
	for i := range 20 {
		_, _, r := call("POST", "/v1/bank/ada/deposit", `{"amount":"1.50"}`)
		pos := int(r["position"].(float64))
		// Each read right after the write sees it.
		code, _, q := call("POST", "/v1/query", `{"sql":"SELECT balance FROM account_balances WHERE account = ?","args":["ada"],"min_position":`+itoa(pos)+`}`)
		if code != 200 {
			t.Fatalf("query: %d %v", code, q)
		}
		rows := q["rows"].([]any)
		want := float64(i+1) * 1.5
		if len(rows) != 1 || rows[0].([]any)[0] != decimal.NewFromFloat(want).String() || q["reflects"].(float64) < float64(pos) {
			t.Fatalf("after deposit %d (position %d): %v, want balance %v", i+1, pos, q, want)
		}
	}
	if code, _, st := call("GET", "/v1/projections/account_balances", ""); code != 200 || st["state"] != "running" {
		t.Fatalf("status: %d %v", code, st)
	}
	// Steering: pause, resume, skip (only a failed one can skip).
	if code, _, st := call("POST", "/v1/projections/account_balances/pause", ""); code != 200 || st["state"] != "paused" {
		t.Fatalf("pause: %d %v", code, st)
	}
	if code, _, st := call("POST", "/v1/projections/account_balances/resume", ""); code != 200 || st["state"] == "paused" {
		t.Fatalf("resume: %d %v", code, st)
	}
	if code, _, e := call("POST", "/v1/projections/account_balances/skip", `{"reason":"a test"}`); code != 400 {
		t.Fatalf("skip of a running projection: %d %v", code, e)
	}
	if code, _, e := call("POST", "/v1/projections/account_balances/skip", `{}`); code != 422 {
		t.Fatalf("skip without a reason: %d %v", code, e)
	}
	if code, _, e := call("POST", "/v1/projections/nothing/pause", ""); code != 404 {
		t.Fatalf("pause of an unknown projection: %d %v", code, e)
	}
	if code, _, e := call("GET", "/v1/projections/nothing", ""); code != 404 {
		t.Fatalf("unknown projection: %d %v", code, e)
	}
	// A position no write has reached yet: 503 after the timeout.
	if code, h, e := call("POST", "/v1/query", `{"sql":"SELECT 1","min_position":1000000,"timeout_ms":100}`); code != 503 || e["code"] != string(api.CodeNotCaughtUp) || h.Get("Retry-After") == "" {
		t.Fatalf("not caught up: %d %v %v", code, h, e)
	}
	// A projection whose first version is only begun: building.
	spec := strings.ReplaceAll(string(src), "account_balances", "balances_two")
	p2, err := projection.ParseSpec([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	v, err := cat.Begin(ctx, "balances_two", p2.Definition())
	if err != nil {
		t.Fatal(err)
	}
	// A build under way has made its tables.
	db, err := cat.Open(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE balances_two (account TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, h, e := call("POST", "/v1/query", `{"sql":"SELECT * FROM balances_two"}`)
	if code != 503 || e["code"] != string(api.CodeProjectionBuilding) || e["building"] == nil || h.Get("Retry-After") == "" {
		t.Fatalf("building: %d %v %v", code, h, e)
	}
	if code, _, e := call("POST", "/v1/query", `{"sql":"DELETE FROM account_balances"}`); code != 400 {
		t.Fatalf("a write: %d %v", code, e)
	}
	// /metrics has the projections.
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var parser expfmt.TextParser
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, name := range []string{"strata_projection_position", "strata_projection_lag_events", "strata_projection_state"} {
		for _, m := range fams[name].GetMetric() {
			key := name
			for _, lp := range m.GetLabel() {
				key += "," + lp.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	if got["strata_projection_position,account_balances"] != 21 || got["strata_projection_lag_events,account_balances"] != 0 ||
		got["strata_projection_state,account_balances,running"] != 1 || got["strata_projection_state,balances_two,building"] != 1 {
		t.Fatalf("projection metrics: %v", got)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
