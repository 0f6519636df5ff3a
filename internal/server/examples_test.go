package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
)

// The examples' commands and time travel over HTTP.
func TestExamplesOverHTTP(t *testing.T) {
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ex, err := examples.New(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(New(Options{Store: l, Examples: ex}))
	defer hs.Close()
	call := func(method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	call("POST", "/v1/bank/ada/open", `{"owner":"Ada"}`, 200)
	r := call("POST", "/v1/bank/ada/deposit", `{"amount":"500"}`, 200)
	if r["stream"] != "account-ada" || r["version"].(float64) != 2 || !strings.Contains(jsonOf(r["state"]), `"500"`) {
		t.Fatalf("deposit: %v", r)
	}
	e := call("POST", "/v1/bank/ada/withdraw", `{"amount":"900"}`, 422)
	if e["code"] != string(api.CodeCommandRejected) || !strings.Contains(e["message"].(string), "insufficient funds") {
		t.Fatalf("overdraft: %v", e)
	}
	call("POST", "/v1/bank/ada/deposit", `{"amount":"twelve"}`, 400)
	call("POST", "/v1/bank/ada/deposit", `{"amount":"47.53"}`, 200)
	if s := call("GET", "/v1/state/account-ada?version=2", "", 200); s["version"].(float64) != 2 || !strings.Contains(jsonOf(s["state"]), `"500"`) {
		t.Fatalf("state at version 2: %v", s)
	}
	if s := call("GET", "/v1/state/account-ada", "", 200); !strings.Contains(jsonOf(s["state"]), `"547.53"`) {
		t.Fatalf("state now: %v", s)
	}
	h := call("GET", "/v1/history/account-ada", "", 200)
	if ch := h["changes"].([]any); len(ch) != 3 {
		t.Fatalf("history: %v", h)
	}
	call("GET", "/v1/state/nothing-here", "", 404)

	call("POST", "/v1/orders/o1/create", `{"customer":"c-7","tax":"1.90","shipping":"4.95"}`, 200)
	call("POST", "/v1/orders/o1/items", `{"sku":"A1","quantity":2,"price":"10.00"}`, 200)
	if o := call("POST", "/v1/orders/o1/ship", ``, 200); !strings.Contains(jsonOf(o["state"]), "shipped") {
		t.Fatalf("shipped order: %v", o)
	}
	call("POST", "/v1/orders/o1/ship", ``, 422)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
