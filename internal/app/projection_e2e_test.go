package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A projection applied to the data directory is run by strata serve, and a
// query over HTTP with the position a command returned sees the command's
// effect.
func TestE2EReadYourWrites(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(binary, "--data", dir, "projection", "apply", "../../examples/account_balances.yaml").CombinedOutput(); err != nil {
		t.Fatalf("projection apply: %v: %s", err, out)
	}
	s := start(t, dir, "127.0.0.1:0")
	post := func(path, body string, out any) int {
		t.Helper()
		resp, err := http.Post(s.url+path, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatalf("%v; the server's stderr:\n%s", err, s.stderr)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return resp.StatusCode
	}
	var r struct{ Position int }
	post("/v1/bank/ada/open", `{"owner":"Ada"}`, &r)
	post("/v1/bank/ada/deposit", `{"amount":"100.25"}`, &r)
	var q struct {
		Rows [][]any
	}
	if code := post("/v1/query", fmt.Sprintf(`{"sql":"SELECT balance FROM account_balances WHERE account = 'ada'","min_position":%d}`, r.Position), &q); code != 200 || len(q.Rows) != 1 || q.Rows[0][0] != "100.25" {
		t.Fatalf("query after the deposit at %d: %d %v", r.Position, code, q)
	}
	// A rebuild during live traffic: version 2 takes over, queries go on.
	var st struct {
		Version int
		State   string
	}
	if code := post("/v1/projections/account_balances/rebuild", ``, &st); code != 202 {
		t.Fatalf("rebuild: %d %+v", code, st)
	}
	deposits := 0
	for deadline := time.Now().Add(30 * time.Second); ; {
		post("/v1/bank/ada/deposit", `{"amount":"1"}`, &r)
		deposits++
		resp, err := http.Get(s.url + "/v1/projections/account_balances")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Version == 2 && st.State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("version 2 did not take over within 30 s: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q.Rows = nil
	if code := post("/v1/query", fmt.Sprintf(`{"sql":"SELECT balance FROM account_balances WHERE account = 'ada'","min_position":%d}`, r.Position), &q); code != 200 || len(q.Rows) != 1 || q.Rows[0][0] != fmt.Sprintf("%d.25", 100+deposits) {
		t.Fatalf("query after the rebuild and %d more deposits: %d %v", deposits, code, q)
	}
	var e struct{ Code string }
	if code := post("/v1/projections/nothing/rebuild", ``, &e); code != 404 {
		t.Fatalf("rebuild of an unknown projection: %d %+v", code, e)
	}
	s.stop(t)
}

// A projection applied over HTTP to a running server builds, serves, and
// answers queries with read-your-writes.
func TestE2EApplyProjectionOverHTTP(t *testing.T) {
	s := start(t, t.TempDir(), "127.0.0.1:0")
	src, err := os.ReadFile("../../examples/account_balances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, s.url+"/v1/projections/account_balances", bytes.NewReader(src))
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("apply: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(s.url + "/v1/projections/account_balances")
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ State string }
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving within 30 s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var r struct{ Position int }
	for _, c := range []struct{ path, body string }{{"/v1/bank/bo/open", `{"owner":"Bo"}`}, {"/v1/bank/bo/deposit", `{"amount":"7.10"}`}} {
		resp, err := http.Post(s.url+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
	}
	resp, err = http.Post(s.url+"/v1/query", "application/json", strings.NewReader(fmt.Sprintf(`{"sql":"SELECT balance FROM account_balances WHERE account = 'bo'","min_position":%d}`, r.Position)))
	if err != nil {
		t.Fatal(err)
	}
	var q struct{ Rows [][]any }
	json.NewDecoder(resp.Body).Decode(&q)
	resp.Body.Close()
	if len(q.Rows) != 1 || q.Rows[0][0] != "7.1" {
		t.Fatalf("query: %d %v", resp.StatusCode, q)
	}
	// The name in the body must be the path's.
	req, _ = http.NewRequest(http.MethodPut, s.url+"/v1/projections/other_name", bytes.NewReader(src))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("a name that is not the path's: %d", resp.StatusCode)
	}
	s.stop(t)
}
