package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/rules"
)

// /metrics parses as Prometheus' text format (promtool is not installable
// here: this is its parser) and counts what was done.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth, err := rules.Open(ctx, l, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(New(Options{Store: l, Rules: auth}))
	defer hs.Close()
	post := func(path, body string) {
		resp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("/v1/streams/a-1", `{"events":[{"type":"x"},{"type":"y"}]}`)
	post("/v1/streams/a-1?expect=no-stream", `{"events":[{"type":"x"}]}`) // 409
	post("/v1/authorize", `{"user_id":"u1","amount":"10"}`)

	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f, ok := fams[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
	next:
		for _, m := range f.Metric {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"strata_appended_events_total", nil, 2},
		{"strata_http_requests_total", []string{"operation", "append", "status", "200"}, 1},
		{"strata_http_requests_total", []string{"operation", "append", "status", "409"}, 1},
		{"strata_http_request_duration_seconds", []string{"operation", "authorize"}, 1},
		{"strata_rule_decisions_total", []string{"outcome", "approve"}, 1},
		{"strata_log_head_position", nil, 4}, // two events, a transaction and its decision
		{"strata_subscriptions_active", nil, 0},
		{"strata_rule_window_keys", nil, 1},
		{"strata_rule_window_events_total", nil, 1},
	} {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// A subscription that wants nothing is as far behind as the head.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, hs.URL+"/v1/subscribe?type=nothing", nil)
	sresp, err := http.DefaultClient.Do(req) // returns once the headers are flushed: subscribed
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	resp2, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	fams2, err := p.TextToMetricFamilies(resp2.Body)
	resp2.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, lag := fams2["strata_subscriptions_active"].GetMetric()[0].GetGauge().GetValue(), fams2["strata_subscription_lag_events"].GetMetric()[0].GetGauge().GetValue(); n != 1 || lag != 4 {
		t.Errorf("one subscription that wants nothing: %v active, lag %v; want 1 and 4", n, lag)
	}
	if value("strata_subscription_lag_events") != 0 {
		t.Errorf("lag with no subscription: %v", value("strata_subscription_lag_events"))
	}
	// Two appends written (the refused one is acknowledged too, with its
	// error); no fsync in this durability mode.
	if a, s := value("strata_log_appends_total"), value("strata_log_fsyncs_total"); a < 2 || s != 0 {
		t.Errorf("log counters: appends %v, fsyncs %v", a, s)
	}
}

// promtool (Debian's prometheus package) checks /metrics, when installed.
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus): TestMetrics checks /metrics with Prometheus' text parser instead")
	}
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth, err := rules.Open(context.Background(), l, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(New(Options{Store: l, Rules: auth}))
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/v1/authorize", "application/json", strings.NewReader(`{"user_id":"u1","amount":"10"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
