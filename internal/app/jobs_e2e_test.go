package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// A windowed job applied over HTTP follows the log live: spend per user
// and minute of the authorized transactions, in the stream job-spend.
func TestE2EJob(t *testing.T) {
	s := start(t, t.TempDir(), "127.0.0.1:0")
	spec := "name: spend\ntypes: [transaction]\nkey: user_id\nvalue: amount\ntime: at\nwindow: {type: tumbling, size: 1m}\n"
	req, _ := http.NewRequest(http.MethodPut, s.url+"/v1/jobs/spend", strings.NewReader(spec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("apply: %d", resp.StatusCode)
	}
	// Another definition under the same name: 409.
	req, _ = http.NewRequest(http.MethodPut, s.url+"/v1/jobs/spend", strings.NewReader(strings.Replace(spec, "1m", "5m", 1)))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("a changed job under its name: %d, want 409", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, s)
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for i, amount := range []int64{10, 20, 5} {
		txn := rules.Transaction{User: "u1", Amount: num.FromMicro(amount * 1_000_000), At: t0.Add(time.Duration(i*20) * time.Second)}
		if _, err := c.Authorize(ctx, txn); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction two minutes on moves the watermark past the first.
	if _, err := c.Authorize(ctx, rules.Transaction{User: "u2", Amount: num.FromMicro(1_000_000), At: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	for rec, err := range c.Subscribe(ctx, store.SubscribeOptions{Filter: store.Filter{StreamPrefix: "job-spend"}}) {
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Key   string
			Value struct {
				N   int64
				Sum string
			}
		}
		if err := json.Unmarshal(rec.Data, &r); err != nil {
			t.Fatal(err)
		}
		if rec.Type != "window.result" || r.Key != "u1" || r.Value.N != 3 || r.Value.Sum != "35" {
			t.Fatalf("%s %s", rec.Type, rec.Data)
		}
		break
	}
	resp, err = http.Get(s.url + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"name":"spend"`) || !strings.Contains(string(b), `"output":"job-spend"`) {
		t.Fatalf("jobs: %s", b)
	}
	s.stop(t)
}
