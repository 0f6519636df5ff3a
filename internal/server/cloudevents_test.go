package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// Events sent by the CloudEvents SDK, in binary and structured mode, are
// appended to the stream their subject names, with their attributes; a
// subscription with format=cloudevents gives them back as the SDK reads
// them.
func TestCloudEventsFromTheSDK(t *testing.T) {
	ctx := context.Background()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hs := httptest.NewServer(New(Options{Store: l}))
	defer hs.Close()

	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var sent []cloudevents.Event
	for i, mode := range []string{"binary", "structured", "binary-text"} {
		e := cloudevents.NewEvent()
		e.SetID("evt-" + mode)
		e.SetSource("/shop/eu")
		e.SetType("order.created")
		e.SetSubject("order-42")
		e.SetTime(at.Add(time.Duration(i) * time.Second))
		e.SetExtension("tenant", "acme")
		if mode == "binary-text" {
			if err := e.SetData("text/plain", "hello"); err != nil {
				t.Fatal(err)
			}
		} else if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{"total": "12.50", "n": i}); err != nil {
			t.Fatal(err)
		}
		c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(hs.URL + "/v1/cloudevents"))
		if err != nil {
			t.Fatal(err)
		}
		sctx := ctx
		if mode == "structured" {
			sctx = cloudevents.WithEncodingStructured(ctx)
		} else {
			sctx = cloudevents.WithEncodingBinary(ctx)
		}
		res := c.Send(sctx, e)
		var hr *cehttp.Result
		if !cloudevents.IsACK(res) || !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v", mode, res)
		}
		sent = append(sent, e)
	}
	// A retry of the latest is recognised by (source, id): nothing appended.
	c, _ := cloudevents.NewClientHTTP(cloudevents.WithTarget(hs.URL + "/v1/cloudevents"))
	if res := c.Send(cloudevents.WithEncodingBinary(ctx), sent[2]); !cloudevents.IsACK(res) {
		t.Fatal(res)
	}
	if h, _ := l.Head(ctx); h != 3 {
		t.Fatalf("head %d, want 3", h)
	}
	n := 0
	for rec, err := range l.ReadStream(ctx, "order-42", store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type != "order.created" || !strings.Contains(string(rec.Metadata), `"tenant":"acme"`) {
			t.Fatalf("record %d: %s %s", n, rec.Type, rec.Metadata)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d events in order-42", n)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, hs.URL+"/v1/subscribe?format=cloudevents", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	i := 0
	for i < 3 && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var got cloudevents.Event
		if err := json.Unmarshal([]byte(data), &got); err != nil {
			t.Fatalf("event %d does not parse as a CloudEvent: %v: %s", i, err, data)
		}
		want := sent[i]
		if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != want.Type() || got.Subject() != want.Subject() ||
			!got.Time().Equal(want.Time()) || got.Extensions()["tenant"] != "acme" || string(got.Data()) != string(want.Data()) {
			t.Fatalf("event %d: got %s\nwant %s", i, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		i++
	}
	if i != 3 {
		t.Fatalf("the subscription gave %d events, want 3: %v", i, sc.Err())
	}
}

func TestCloudEventsRefused(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hs := httptest.NewServer(New(Options{Store: l}))
	defer hs.Close()
	for _, tc := range []struct {
		name, ct, body string
		headers        map[string]string
		want           int
	}{
		{"binary without ce-id", "application/json", `{}`, map[string]string{"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, 400},
		{"wrong specversion", "application/json", `{}`, map[string]string{"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, 400},
		{"structured, not JSON", ceMediaType, `{"specversion":`, nil, 400},
		{"structured, no type", ceMediaType, `{"specversion":"1.0","id":"1","source":"s"}`, nil, 400},
		{"bad time", ceMediaType, `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"noon"}`, nil, 400},
		{"stream name from a bad subject", ceMediaType, `{"specversion":"1.0","id":"1","source":"s","type":"t","subject":"a\u0000b"}`, nil, 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/cloudevents", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if h, _ := l.Head(context.Background()); h != 0 {
		t.Fatalf("head %d after refused events", h)
	}
}
