package storetest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// mutants are memStore bugs the suite must catch, each with the subtest that
// must fail because of it. TestSuiteCatchesBugs runs that subtest in a child
// process with the bug planted and expects it to fail: a check that the
// suite's assertions can fail at all, and keep failing as it changes.
var mutants = map[string]struct {
	bugs    memBugs
	subtest string // under TestMemStore
}{
	"noIdempotency":    {memBugs{noIdempotency: true}, "Idempotency/Exactly"},
	"retryAnyPlace":    {memBugs{retryAnyPlace: true}, "Idempotency/DifferentPlace"},
	"checkThenAct":     {memBugs{checkThenAct: true}, "Concurrency/Linearizability"},
	"checkThenAct2":    {memBugs{checkThenAct: true}, "Concurrency/OptimisticRetries"},
	"subscribeGap":     {memBugs{subscribeGap: true}, "Subscribe/HandOff"},
	"sizeDataOnly":     {memBugs{sizeDataOnly: true}, "Append/EventTooLarge"},
	"keepBuffers":      {memBugs{keepBuffers: true}, "Append/CallerBuffersNotRetained"},
	"limitBeforeMatch": {memBugs{limitBeforeMatch: true}, "ReadAll/Options"},
	"backwardsExclude": {memBugs{backwardsExclude: true}, "ReadStream/Options"},
}

func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child test processes")
	}
	if os.Getenv(memBugEnv) != "" {
		t.Skip("inside a mutant run")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			group, test, _ := strings.Cut(m.subtest, "/")
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^TestMemStore$/^"+group+"$/^"+test+"$", "-test.count=1", "-test.v")
			// TMPDIR: where a failing child leaves files (porcupine's
			// visualization), removed with this test.
			cmd.Env = append(os.Environ(), memBugEnv+"="+name, "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("TestMemStore/%s passed with bug %s planted:\n%s", m.subtest, name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestMemStore/"+m.subtest) {
				t.Fatalf("child run with bug %s failed, but not in TestMemStore/%s:\n%s", name, m.subtest, out)
			}
		})
	}
}
