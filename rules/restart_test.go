package rules_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/rules/txngen"
	"github.com/stratadb/strata/store"
)

// The traffic of the restart test: late transactions included (amendments),
// so that the state carried across a crash is more than a running count.
var restartTraffic = txngen.Options{Users: 60, Rate: 20, FraudRatio: 0.1, Duration: 4 * time.Minute, Seed: 3}

// authorizeAll feeds the traffic to an authorizer over dir: every
// transaction, in order, with its id, so that after a crash the ones
// already recorded get their recorded decisions back. It reports progress
// on w every 100 transactions.
func authorizeAll(dir string, w *os.File) error {
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{Durability: eventlog.SyncAlways})
	if err != nil {
		return err
	}
	defer l.Close()
	ctx := context.Background()
	a, err := rules.Open(ctx, l, rules.Options{Dir: filepath.Join(dir, "rules"), CheckpointEvery: 250, Remember: time.Hour})
	if err != nil {
		return err
	}
	n := 0
	var failed error
	_, err = txngen.Generate(restartTraffic, func(t rules.Transaction) bool {
		if n%7 == 3 { // every seventh comes 20 s late
			t.At = t.At.Add(-20 * time.Second)
		}
		if _, failed = a.Authorize(ctx, t); failed != nil {
			return false
		}
		if n++; n%100 == 0 && w != nil {
			fmt.Fprintln(w, n)
		}
		return true
	})
	if err == nil {
		err = failed
	}
	if err == nil {
		err = a.Close(ctx)
	}
	return err
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("STRATA_RULES_CHILD"); dir != "" {
		if err := authorizeAll(dir, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// decisionsOf reads every decision and amendment a log records, in order.
func decisionsOf(t *testing.T, dir string) []string {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []string
	for rec, err := range l.ReadAll(context.Background(), store.ReadAllOptions{Filter: store.Filter{Types: []string{rules.TypeDecision, rules.TypeAmendment}}}) {
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		out = append(out, rec.Type+" "+string(b))
	}
	return out
}

// Killed with SIGKILL three times while it authorizes, restarted from its
// checkpoint and the log each time, the authorizer records exactly the
// decisions and amendments of a run that was never interrupted.
func TestKillAndRestartDecidesAsUninterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	whole := t.TempDir()
	if err := authorizeAll(whole, nil); err != nil {
		t.Fatal(err)
	}
	want := decisionsOf(t, whole)

	crashed := t.TempDir()
	for _, at := range []int{300, 900, 1500} {
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), "STRATA_RULES_CHILD="+crashed)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, _ := strconv.Atoi(sc.Text()); n >= at {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	// The last run goes to the end.
	if err := authorizeAll(crashed, nil); err != nil {
		t.Fatal(err)
	}
	got := decisionsOf(t, crashed)
	if len(got) != len(want) {
		t.Fatalf("%d decisions and amendments after the crashes, %d uninterrupted", len(got), len(want))
	}
	amendments := 0
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d:\ncrashed       %s\nuninterrupted %s", i, got[i], want[i])
		}
		if want[i][:len(rules.TypeAmendment)] == rules.TypeAmendment {
			amendments++
		}
	}
	if amendments == 0 {
		t.Fatal("the traffic made no amendment: the test would not see them carried over")
	}
	t.Logf("%d decisions and amendments (%d amendments) equal", len(want), amendments)
}
