package app_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// strata --server URL runs the commands against a running server: the
// same binary, the same output, nothing read from a local directory.
func TestE2ECLIAgainstServer(t *testing.T) {
	s := start(t, t.TempDir(), "127.0.0.1:0")
	run := func(wantCode int, stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"--server", s.url, "--data", t.TempDir() + "/unused"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("strata %v: exit %d, want %d: %s", args, code, wantCode, out)
		}
		return string(out)
	}
	run(0, `{"type":"account.opened","data":{"owner":"ada"}}`, "append", "notes-1", "--expect", "no-stream")
	if out := run(1, `{"type":"x"}`, "append", "notes-1", "--expect", "no-stream"); !strings.Contains(out, "wrong expected version") {
		t.Fatalf("a conflict over HTTP: %s", out)
	}
	var rec struct {
		Stream, Type string
		Data         map[string]string
	}
	if err := json.Unmarshal([]byte(run(0, "", "read", "notes-1")), &rec); err != nil || rec.Data["owner"] != "ada" {
		t.Fatalf("read: %+v, %v", rec, err)
	}
	// The write side runs its deciders on the server's log.
	run(0, "", "bank", "open", "ada", "--owner", "Ada")
	run(0, "", "bank", "deposit", "ada", "500")
	if out := run(1, "", "bank", "withdraw", "ada", "900"); !strings.Contains(out, "insufficient") {
		t.Fatalf("an overdraft over HTTP: %s", out)
	}
	if out := run(0, "", "state", "account-ada"); !strings.Contains(out, "500") {
		t.Fatalf("state: %s", out)
	}
	// The rules are the server's.
	if out := run(0, "", "authorize", "--user", "u1", "--amount", "5001", "-o", "json"); !strings.Contains(out, `"outcome": "deny"`) && !strings.Contains(out, `"outcome":"deny"`) {
		t.Fatalf("authorize: %s", out)
	}
	if out := run(0, "", "rules", "disable", "spend", "--by", "alice"); !strings.Contains(out, "disabled") {
		t.Fatalf("rules disable: %s", out)
	}
	if out := run(0, "", "authorize", "--user", "u2", "--amount", "5001"); !strings.Contains(out, "approve") {
		t.Fatalf("authorize with spend disabled: %s", out)
	}
	// What needs a data directory says so.
	for _, cmd := range [][]string{{"stats"}, {"verify"}, {"query", "SELECT 1"}, {"projection", "list"}, {"serve"}} {
		if out := run(2, "", cmd...); !strings.Contains(out, "local data directory") {
			t.Fatalf("%v with --server: %s", cmd, out)
		}
	}
	s.stop(t)
}
