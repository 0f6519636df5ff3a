package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// State carries over between invocations: the 11th transaction of a burst
// is denied by velocity, and the decision names the rule and its value.
func TestAuthorizeAcrossInvocations(t *testing.T) {
	run := cli(t, t.TempDir())
	var d struct {
		Outcome string `json:"outcome"`
		Fired   []struct {
			Rule   string `json:"rule"`
			Values []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"values"`
		} `json:"fired"`
		Position uint64 `json:"position"`
	}
	for i := range 11 {
		r := run(ExitOK, "authorize", "--user", "u1", "--amount", "12.50", "--durability", "none",
			"--at", fmt.Sprintf("2026-11-28T12:00:%02dZ", 49+i), "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("%q: %v", r.stdout, err)
		}
		if want := map[bool]string{false: "approve", true: "deny"}[i == 10]; d.Outcome != want {
			t.Fatalf("transaction %d: %s", i+1, r.stdout)
		}
	}
	if len(d.Fired) != 1 || d.Fired[0].Rule != "velocity" || d.Fired[0].Values[0].Value != "11" || d.Position != 21 {
		t.Fatalf("11th: %+v", d)
	}
	r := run(ExitOK, "authorize", "--user", "u1", "--amount", "4875.01", "--at", "2026-11-28T12:02:00Z", "--durability", "none")
	if !strings.Contains(r.stdout, "deny") || !strings.Contains(r.stdout, "sum(amount) = 5000.01") {
		t.Fatalf("spend: %s", r.stdout)
	}
	run(ExitUsage, "authorize", "--user", "u1", "--amount", "ten")
	run(ExitUsage, "authorize", "--amount", "1")
}

func TestRulesCommands(t *testing.T) {
	dir := t.TempDir()
	run := cli(t, dir)
	file := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(file, []byte(`rules:
  - name: big
    key: user_id
    window: {type: lookback, size: 1h}
    condition: max(amount) >= 1000
    action: review
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(ExitOK, "rules", "apply", "-f", file, "--by", "alice")
	run(ExitOK, "rules", "disable", "velocity")
	r := run(ExitOK, "rules", "list")
	for _, want := range []string{"big       1        enabled", "velocity  1        disabled", "spend     0        enabled"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(ExitOK, "authorize", "--user", "u2", "--amount", "1000")
	if !strings.Contains(r.stdout, "review") || !strings.Contains(r.stdout, "big v1") {
		t.Fatalf("authorize with the new rule: %s", r.stdout)
	}
	run(ExitOK, "rules", "rm", "big")
	run(ExitFailure, "rules", "rm", "big")
	if err := os.WriteFile(file, []byte("rules:\n  - name: x\n    key: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(ExitUsage, "rules", "apply", "-f", file)
	if !strings.Contains(r.stderr, "rules[0].key") {
		t.Fatalf("bad rule file: %s", r.stderr)
	}
}

func TestAlertsCommands(t *testing.T) {
	run := cli(t, t.TempDir())
	for i := range 11 {
		run(ExitOK, "authorize", "--user", "u1", "--amount", "1", "--durability", "none", "--at", fmt.Sprintf("2026-11-28T12:00:%02dZ", 10+i))
	}
	r := run(ExitOK, "alerts")
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"kind":"deny"`) {
		t.Fatalf("alerts: %s", r.stdout)
	}
	if r := run(ExitOK, "alerts"); r.stdout != "" {
		t.Fatalf("alerts raised twice: %s", r.stdout)
	}
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Idempotency-Key")
	}))
	defer srv.Close()
	r = run(ExitOK, "alerts", "deliver", "--webhook", srv.URL, "--name", "ops")
	if r.stdout != "delivered 1 alerts\n" || len(got) != 1 {
		t.Fatalf("deliver: %q, %d requests", r.stdout, len(got))
	}
	run(ExitUsage, "alerts", "deliver", "--name", "ops")
	run(ExitUsage, "alerts", "deliver", "--webhook", srv.URL)
}

func TestGenTransactionsScores(t *testing.T) {
	dir := t.TempDir()
	run := cli(t, dir)
	r := run(ExitOK, "gen", "transactions", "--users", "200", "--rate", "10", "--fraud-ratio", "0.05", "--duration", "4m",
		"--durability", "none", "--truth", filepath.Join(dir, "truth.jsonl"), "-o", "json")
	var s struct{ Episodes, Caught, Flagged, Ordinary int }
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Episodes != 10 || s.Caught != 10 || s.Flagged != 0 || s.Ordinary == 0 {
		t.Fatalf("score %s", r.stdout)
	}
	truth, err := os.ReadFile(filepath.Join(dir, "truth.jsonl"))
	if err != nil || strings.Count(string(truth), "\n") != 10 {
		t.Fatalf("ground truth: %v\n%s", err, truth)
	}
	run(ExitUsage, "gen", "transactions", "--users", "0")
}
