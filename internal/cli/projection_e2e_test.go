package cli

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// Read models from the shell: apply the example YAML projections, query
// them, refuse writes, and read one's own write with --at-least while
// `strata projection run` follows the log.
func TestE2EProjectionsAndQueries(t *testing.T) {
	dir := t.TempDir() + "/log"
	bg := context.Background()
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ada")
	run(ExitOK, "bank", "deposit", "ada", "500")
	run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	r := run(ExitOK, "query", "SELECT balance FROM account_balances WHERE account = 'ada'", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"500"}` || !strings.Contains(r.stderr, "reflects log position 2") {
		t.Fatalf("query: %q %q", r.stdout, r.stderr)
	}
	if r := run(ExitFailure, "query", "UPDATE account_balances SET balance = '1000000'"); !strings.Contains(r.stderr, "refused") {
		t.Fatalf("write query: %q", r.stderr)
	}
	changed := t.TempDir() + "/changed.yaml"
	os.WriteFile(changed, []byte("name: account_balances\ntables: [\"CREATE TABLE IF NOT EXISTS x (a)\"]\non: {t: \"INSERT INTO x VALUES (:position)\"}\n"), 0o644)
	if r := run(ExitFailure, "projection", "apply", changed); !strings.Contains(r.stderr, "another definition") {
		t.Fatalf("re-apply with another definition: %q", r.stderr)
	}

	// A runner follows the log in the background.
	ctx, cancel := context.WithCancel(bg)
	done := make(chan result, 1)
	go func() { done <- execRoot(t, ctx, "", "projection", "run", "--data", dir) }()
	var res bankResultJSON
	json.Unmarshal([]byte(run(ExitOK, "bank", "withdraw", "ada", "200").stdout), &res)
	r = run(ExitOK, "query", "SELECT balance FROM account_balances WHERE account = 'ada'", "--at-least", itoa(res.Position), "--timeout", "30s", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"300"}` {
		t.Fatalf("read-your-writes query: %q %q", r.stdout, r.stderr)
	}
	cancel()
	if rr := <-done; rr.code != ExitOK {
		t.Fatalf("projection run ended with %d: %s", rr.code, rr.stderr)
	}
	var st projectionStatusJSON
	json.Unmarshal([]byte(run(ExitOK, "projection", "status", "account_balances").stdout), &st)
	if st.Position != 3 || st.Head != 3 || st.LagEvents != 0 || st.State != "running" {
		t.Fatalf("status = %+v", st)
	}
	// Nothing runs the projection now: --at-least times out and says so.
	run(ExitOK, "bank", "deposit", "ada", "1")
	if r := run(ExitFailure, "query", "SELECT 1", "--at-least", "4", "--timeout", "50ms"); !strings.Contains(r.stderr, "timed out") {
		t.Fatalf("timeout: %q", r.stderr)
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestE2EOrderSearch(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "orders", "create", "o-1", "--customer", "Ada Lovelace")
	run(ExitOK, "orders", "add-item", "o-1", "engine", "1", "100")
	run(ExitOK, "orders", "create", "o-2", "--customer", "Charles Babbage")
	run(ExitFailure, "orders", "search", "ada") // nothing applied yet: no read models
	run(ExitOK, "projection", "apply", "../../examples/order_search.yaml")
	r := run(ExitOK, "orders", "search", "ada OR engine", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"customer":"Ada Lovelace","order_id":"o-1","products":"engine"}` {
		t.Fatalf("search: %q", r.stdout)
	}
	if r := run(ExitOK, "orders", "search", "customer:babbage"); !strings.Contains(r.stdout, "o-2") || strings.Contains(r.stdout, "o-1") {
		t.Fatalf("column search: %q", r.stdout)
	}
}
