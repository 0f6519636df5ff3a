package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// setup records a burst whose 11th transaction is denied, and a late
// transaction that amends a decision: two alerts.
func setup(t *testing.T) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	a, err := rules.Open(ctx, l, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		if _, err := a.Authorize(ctx, rules.Transaction{User: "u1", Amount: num.FromInt(10), At: t0.Add(time.Duration(10+i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	// u2: ten approved, then one late at 5 s that makes the 10th the 11th.
	for i := range 10 {
		if _, err := a.Authorize(ctx, rules.Transaction{User: "u2", Amount: num.FromInt(10), At: t0.Add(time.Duration(10+i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Authorize(ctx, rules.Transaction{User: "u2", Amount: num.FromInt(10), At: t0.Add(5 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	return l
}

func readAlerts(t *testing.T, st store.Store) []Alert {
	t.Helper()
	var out []Alert
	for rec, err := range st.ReadStream(context.Background(), Stream, store.ReadStreamOptions{}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var a Alert
		if err := json.Unmarshal(rec.Data, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func TestDeriveOnce(t *testing.T) {
	l := setup(t)
	ctx := context.Background()
	for range 2 { // the second run finds nothing new
		if err := Derive(ctx, l, DeriveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	as := readAlerts(t, l)
	if len(as) != 2 || as[0].Kind != "deny" || as[0].User != "u1" || as[0].Fired[0].Rule != "velocity" ||
		as[1].Kind != "amendment" || as[1].User != "u2" || as[1].Previous != rules.Approve || as[1].Outcome != rules.Deny {
		t.Fatalf("alerts: %+v", as)
	}
}

func TestWebhookAtLeastOnceWithBackoff(t *testing.T) {
	l := setup(t)
	ctx := context.Background()
	if err := Derive(ctx, l, DeriveOptions{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var keys []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if calls <= 2 { // the receiver is down for the first two tries
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	sink := &Webhook{URL: srv.URL}
	opts := DeliverOptions{Name: "hook", Backoff: time.Millisecond}
	if err := Deliver(ctx, l, sink, opts); err != nil {
		t.Fatal(err)
	}
	if calls != 4 || keys[0] != keys[1] || keys[1] != keys[2] || keys[2] == keys[3] {
		t.Fatalf("%d calls with keys %v: want the first alert three times with one key, then the second", calls, keys)
	}
	// Delivered alerts are not sent again.
	if err := Deliver(ctx, l, sink, opts); err != nil || calls != 4 {
		t.Fatalf("second delivery: %v, %d calls", err, calls)
	}
}

func TestWebhookRejectionStopsWithoutLosing(t *testing.T) {
	l := setup(t)
	ctx := context.Background()
	if err := Derive(ctx, l, DeriveOptions{}); err != nil {
		t.Fatal(err)
	}
	status := http.StatusBadRequest
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(status)
	}))
	defer srv.Close()
	opts := DeliverOptions{Name: "hook", Backoff: time.Millisecond}
	if err := Deliver(ctx, l, &Webhook{URL: srv.URL}, opts); !errors.Is(err, ErrRejected) || calls != 1 {
		t.Fatalf("rejected: %v after %d calls", err, calls)
	}
	// Fixed: both alerts go out, the first included.
	status = http.StatusOK
	if err := Deliver(ctx, l, &Webhook{URL: srv.URL}, opts); err != nil || calls != 3 {
		t.Fatalf("after the fix: %v, %d calls", err, calls)
	}
}

func TestNATS(t *testing.T) {
	url := os.Getenv("STRATA_TEST_NATS_URL")
	if url == "" {
		t.Skip("STRATA_TEST_NATS_URL is not set: set it to a NATS server (nats://127.0.0.1:4222) to run this test")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l := setup(t)
	ctx := context.Background()
	if err := Derive(ctx, l, DeriveOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := "strata.test.alerts." + nats.NewInbox()[7:]
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := Deliver(ctx, l, &NATS{Conn: nc, Subject: subject}, DeliverOptions{Name: "nats"}); err != nil {
		t.Fatal(err)
	}
	for i, kind := range []string{"deny", "amendment"} {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var a Alert
		if err := json.Unmarshal(m.Data, &a); err != nil || a.Kind != kind || m.Header.Get(nats.MsgIdHdr) == "" {
			t.Fatalf("message %d: %s %v (id %q)", i, m.Data, err, m.Header.Get(nats.MsgIdHdr))
		}
	}
}
