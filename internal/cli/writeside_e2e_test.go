package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The reference account from a shell's point of view: $0, +$500, -$200,
// +$947.53 is $1,247.53; an overdraft is refused; the state at version 2
// (between the deposits) is $500; history has one row per change.
func TestE2EBankReferenceAccount(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ref")
	run(ExitOK, "bank", "deposit", "ref", "500")
	// A moment after the first deposit was recorded and before the next
	// command's event is.
	between := time.Now().UTC().Format(time.RFC3339Nano)
	run(ExitOK, "bank", "withdraw", "ref", "200")
	r := run(ExitOK, "bank", "deposit", "ref", "947.53")
	if !strings.Contains(r.stdout, `"balance":"1247.53"`) {
		t.Fatalf("deposit output %s", r.stdout)
	}
	if r := run(ExitFailure, "bank", "withdraw", "ref", "1247.54"); !strings.Contains(r.stderr, "insufficient funds") {
		t.Fatalf("overdraft stderr %q", r.stderr)
	}
	run(ExitUsage, "bank", "deposit", "ref", "lots")

	var st struct {
		Version uint64
		State   struct{ Balance string }
	}
	json.Unmarshal([]byte(run(ExitOK, "state", "account-ref").stdout), &st)
	if st.Version != 4 || st.State.Balance != "1247.53" {
		t.Fatalf("state now = %+v", st)
	}
	json.Unmarshal([]byte(run(ExitOK, "state", "account-ref", "--version", "2").stdout), &st)
	if st.Version != 2 || st.State.Balance != "500" {
		t.Fatalf("state at version 2 = %+v", st)
	}
	json.Unmarshal([]byte(run(ExitOK, "state", "account-ref", "--at", between).stdout), &st)
	if st.Version != 2 || st.State.Balance != "500" {
		t.Fatalf("state at %s (between the deposits) = %+v", between, st)
	}
	r = run(ExitOK, "history", "account-ref", "--from", "2000-01-01", "--to", "2100-01-01", "--changes", "-o", "csv")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || lines[0] != "valid_from,valid_to,version,balance,open" || !strings.HasSuffix(lines[4], ",,4,1247.53,true") {
		t.Fatalf("history --changes:\n%s", r.stdout)
	}
	if r := run(ExitOK, "snapshot", "account-ref"); !strings.Contains(r.stdout, `"version":4`) {
		t.Fatalf("snapshot output %s", r.stdout)
	}
	run(ExitFailure, "state", "nope-1")
	run(ExitUsage, "history", "account-ref", "--from", "2000-01-01", "--to", "2100-01-01")
}
