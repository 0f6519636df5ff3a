package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"testing"
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
			t.Fatal(err)
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
	s.stop(t)
}
