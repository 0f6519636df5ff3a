package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/projection"
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
	if r := run(ExitFailure, "query", "SELECT 1"); !strings.Contains(r.stderr, "no read models") {
		t.Fatalf("query before any apply: %q", r.stderr)
	}
	r := run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	var st projectionStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Version != 1 || st.Position != 2 || st.Head != 2 || st.State != "running" || st.Building != nil {
		t.Fatalf("apply: %v %+v (%s)", err, st, r.stdout)
	}
	for _, f := range []string{"catalog.db", "account_balances/v1.db"} {
		if _, err := os.Stat(filepath.Join(dir, "readmodels", f)); err != nil {
			t.Fatalf("layout: %v", err)
		}
	}
	r = run(ExitOK, "query", "SELECT balance FROM account_balances WHERE account = 'ada'", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"500"}` || !strings.Contains(r.stderr, "reflects log position 2") {
		t.Fatalf("query: %q %q", r.stdout, r.stderr)
	}
	for _, q := range []string{
		"UPDATE account_balances SET balance = '1000000'",
		"CREATE TABLE sneaky (a)",
		"INSERT INTO account_balances.strata_checkpoints VALUES ('x', 1, 'now')",
	} {
		if r := run(ExitFailure, "query", q); !strings.Contains(r.stderr, "refused") {
			t.Fatalf("write query %q: %q", q, r.stderr)
		}
	}

	// A runner follows the log in the background.
	ctx, cancel := context.WithCancel(bg)
	done := make(chan result, 1)
	go func() { done <- execRoot(t, ctx, "", "projection", "run", "--data", dir) }()
	var res bankResultJSON
	json.Unmarshal([]byte(run(ExitOK, "bank", "withdraw", "ada", "200").stdout), &res)
	r = run(ExitOK, "query", "SELECT balance FROM account_balances WHERE account = 'ada'", "--at-least", itoa(res.Position), "--timeout", "30s", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"300"}` || !strings.Contains(r.stderr, "reflects log position 3") {
		t.Fatalf("read-your-writes query: %q %q", r.stdout, r.stderr)
	}
	// pause and resume act on the serving version; the runner follows.
	run(ExitOK, "projection", "pause", "account_balances")
	waitState(t, run, "account_balances", "paused")
	run(ExitOK, "projection", "resume", "account_balances")
	waitState(t, run, "account_balances", "running")
	cancel()
	if rr := <-done; rr.code != ExitOK {
		t.Fatalf("projection run ended with %d: %s", rr.code, rr.stderr)
	}
	st = projectionStatusJSON{}
	json.Unmarshal([]byte(run(ExitOK, "projection", "status", "account_balances").stdout), &st)
	if st.Version != 1 || st.Position != 3 || st.Head != 3 || st.LagEvents != 0 || st.State != "running" {
		t.Fatalf("status = %+v", st)
	}
	// Nothing runs the projection now: --at-least times out and says so.
	run(ExitOK, "bank", "deposit", "ada", "1")
	if r := run(ExitFailure, "query", "SELECT 1", "--at-least", "4", "--timeout", "50ms"); !strings.Contains(r.stderr, "timed out") {
		t.Fatalf("timeout: %q", r.stderr)
	}
	if r := run(ExitFailure, "projection", "skip", "account_balances", "--reason", "test"); !strings.Contains(r.stderr, "not in the failed state") {
		t.Fatalf("skip of a running projection: %q", r.stderr)
	}
}

// waitState waits until `projection status NAME` reports state.
func waitState(t *testing.T, run func(int, ...string) result, name, state string) projectionStatusJSON {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st projectionStatusJSON
		json.Unmarshal([]byte(run(ExitOK, "projection", "status", name).stdout), &st)
		if string(st.State) == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %s: %+v", name, state, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// balancesWithCurrency is examples/account_balances.yaml with a column
// more: a changed definition.
func balancesWithCurrency(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/account_balances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), "last_position BIGINT NOT NULL\n", "last_position BIGINT NOT NULL,\n      currency      TEXT NOT NULL DEFAULT 'EUR'\n", 1)
	if changed == string(b) {
		t.Fatal("account_balances.yaml changed: update the test's edit")
	}
	path := filepath.Join(t.TempDir(), "account_balances.yaml")
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// versionStates reads the catalog: version number → state.
func versionStates(t *testing.T, dir, name string) map[int]projection.VersionState {
	t.Helper()
	cat, err := projection.OpenCatalog(filepath.Join(dir, "readmodels"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	vs, err := cat.Versions(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]projection.VersionState{}
	for _, v := range vs {
		out[v.Number] = v.State
	}
	return out
}

// Applying a changed definition builds version 2 beside version 1 and
// switches to it; queries then see the new column.
func TestE2EApplyChangedDefinition(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ada")
	run(ExitOK, "bank", "deposit", "ada", "500")
	run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	run(ExitFailure, "query", "SELECT currency FROM account_balances")
	run(ExitOK, "bank", "deposit", "ada", "20")

	r := run(ExitOK, "projection", "apply", balancesWithCurrency(t))
	var st projectionStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Version != 2 || st.Position != 3 || st.State != "running" {
		t.Fatalf("apply v2: %v %+v", err, st)
	}
	r = run(ExitOK, "query", "SELECT balance, currency FROM account_balances WHERE account = 'ada'", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"520","currency":"EUR"}` || !strings.Contains(r.stderr, "reflects log position 3") {
		t.Fatalf("query v2: %q %q", r.stdout, r.stderr)
	}
	if got := versionStates(t, dir, "account_balances"); got[1] != projection.VersionRetired || got[2] != projection.VersionServing {
		t.Fatalf("versions: %v", got)
	}
	stored, err := os.ReadFile(filepath.Join(dir, "projections", "account_balances.yaml"))
	if err != nil || !bytes.Contains(stored, []byte("currency")) {
		t.Fatalf("stored spec: %v %s", err, stored)
	}
	// Applying it again changes nothing.
	r = run(ExitOK, "projection", "apply", balancesWithCurrency(t))
	if json.Unmarshal([]byte(r.stdout), &st); st.Version != 2 {
		t.Fatalf("re-apply: %s", r.stdout)
	}
}

// `projection rebuild` builds a new version with progress lines and
// switches; --shadow passes when nothing changed and fails with the
// difference when the applied definition no longer matches the serving one.
func TestE2EProjectionRebuild(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ada")
	run(ExitOK, "bank", "deposit", "ada", "500")
	run(ExitOK, "bank", "open", "bob")
	run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	run(ExitFailure, "projection", "rebuild", "nope")
	run(ExitUsage, "projection", "rebuild", "account_balances", "--workers", "-1")

	r := run(ExitOK, "projection", "rebuild", "account_balances", "--no-progress", "--workers", "2")
	for _, want := range []string{"account_balances v2 replaying 3/3 (100%)", "account_balances v2 switched at position 3", "version 2 serves", "version 1 retired"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("rebuild output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(ExitOK, "projection", "list")
	if !regexpMatch(`account_balances\s+v2\s+running\s+3\s+-`, r.stdout) {
		t.Fatalf("list:\n%s", r.stdout)
	}
	var st projectionStatusJSON
	json.Unmarshal([]byte(run(ExitOK, "projection", "status", "account_balances").stdout), &st)
	if st.Version != 2 || st.Position != 3 || st.State != "running" || st.Building != nil {
		t.Fatalf("status after rebuild: %+v", st)
	}
	if got := versionStates(t, dir, "account_balances"); got[1] != projection.VersionRetired || got[2] != projection.VersionServing {
		t.Fatalf("versions: %v", got)
	}
	r = run(ExitOK, "query", "SELECT account, balance FROM account_balances ORDER BY account", "-o", "json")
	if r.stdout != "{\"account\":\"ada\",\"balance\":\"500\"}\n{\"account\":\"bob\",\"balance\":\"0\"}\n" {
		t.Fatalf("query after rebuild: %q", r.stdout)
	}
	// The switched-to version is ready to be steered.
	run(ExitOK, "projection", "pause", "account_balances")
	run(ExitOK, "projection", "resume", "account_balances")

	// Unchanged: the shadow check passes.
	run(ExitOK, "bank", "deposit", "bob", "7")
	r = run(ExitOK, "projection", "rebuild", "account_balances", "--shadow", "--no-progress")
	if !strings.Contains(r.stdout, "version 3 serves") {
		t.Fatalf("shadow rebuild: %s", r.stdout)
	}

	// A definition edited in place (not applied) that changes what the
	// tables say: the shadow check refuses, shows the difference, and
	// version 3 goes on serving.
	spec := filepath.Join(dir, "projections", "account_balances.yaml")
	b, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(b, []byte("dec_add(balance, :data.amount)"), []byte("dec_add(balance, dec_mul(:data.amount, 2))"), 1), 0o644)
	r = run(ExitFailure, "projection", "rebuild", "account_balances", "--shadow", "--no-progress")
	if !strings.Contains(r.stderr, "shadow check") || !strings.Contains(r.stderr, "1000") {
		t.Fatalf("shadow mismatch: %s", r.stderr)
	}
	got := versionStates(t, dir, "account_balances")
	if got[3] != projection.VersionServing || got[4] != projection.VersionAbandoned {
		t.Fatalf("versions after a refused switch: %v", got)
	}
	r = run(ExitOK, "query", "SELECT balance FROM account_balances WHERE account = 'ada'", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"500"}` {
		t.Fatalf("query after a refused switch: %q", r.stdout)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// A projection whose only version is still building answers queries with
// its build status; status and list say so; apply finishes the build.
func TestE2EQueryWhileBuilding(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ada")
	run(ExitOK, "bank", "deposit", "ada", "500")
	run(ExitOK, "bank", "deposit", "ada", "5")
	run(ExitOK, "projection", "apply", "../../examples/order_search.yaml") // another projection, serving

	// A build interrupted after position 1 of 3: what a Manager leaves
	// when it is stopped mid-replay.
	b, err := os.ReadFile("../../examples/account_balances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := projection.ParseSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log, err := eventlog.Open(dir, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := projection.OpenCatalog(filepath.Join(dir, "readmodels"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := cat.Begin(ctx, p.Name(), p.Definition())
	if err != nil {
		t.Fatal(err)
	}
	db, err := cat.Open(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := projection.Replay(ctx, p, db, log, projection.ReplayOptions{Until: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cat.Report(ctx, v, 1, 3, 10); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cat.Close()
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	r := run(ExitFailure, "query", "SELECT balance FROM account_balances")
	if !strings.Contains(r.stderr, "projection account_balances is building (version 1): at position 1 of 3 (33%)") {
		t.Fatalf("query on a building projection: %q", r.stderr)
	}
	var st projectionStatusJSON
	json.Unmarshal([]byte(run(ExitOK, "projection", "status", "account_balances").stdout), &st)
	if st.State != "building" || st.Version != 0 || st.Building == nil ||
		*st.Building != (buildingJSON{Version: 1, Position: 1, Until: 3, Rate: 10, ETASeconds: 0.2}) {
		t.Fatalf("status of a building projection: %+v %+v", st, st.Building)
	}
	r = run(ExitOK, "projection", "list")
	if !regexpMatch(`account_balances\s+-\s+building\s+-\s+v1 1/3 \(33%\) 10 events/s ETA 0s`, r.stdout) || !regexpMatch(`order_search\s+v1\s+running\s+3\s+-`, r.stdout) {
		t.Fatalf("list:\n%s", r.stdout)
	}
	if r := run(ExitFailure, "projection", "pause", "account_balances"); !strings.Contains(r.stderr, "no serving version yet") {
		t.Fatalf("pause of a building projection: %q", r.stderr)
	}
	// The other projection answers meanwhile.
	run(ExitOK, "query", "SELECT count(*) FROM order_search")

	// apply resumes the build and serves it.
	r = run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	if json.Unmarshal([]byte(r.stdout), &st); st.Version != 1 || st.State != "running" || st.Position != 3 {
		t.Fatalf("apply after the interrupted build: %s", r.stdout)
	}
	r = run(ExitOK, "query", "SELECT balance FROM account_balances", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"505"}` {
		t.Fatalf("query after the build: %q", r.stdout)
	}
}

// While `strata projection run` runs a projection, rebuild and a changed
// apply refuse and change nothing.
func TestE2ERebuildRefusedWhileRunning(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ada")
	run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- execRoot(t, ctx, "", "projection", "run", "--data", dir) }()
	defer func() {
		cancel()
		if rr := <-done; rr.code != ExitOK {
			t.Errorf("projection run ended with %d: %s", rr.code, rr.stderr)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st projectionStatusJSON
		json.Unmarshal([]byte(run(ExitOK, "projection", "status", "account_balances").stdout), &st)
		if st.Active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner never beat: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := run(ExitFailure, "projection", "rebuild", "account_balances", "--no-progress"); !strings.Contains(r.stderr, "stop `strata projection run` first") {
		t.Fatalf("rebuild while running: %q", r.stderr)
	}
	if r := run(ExitFailure, "projection", "apply", balancesWithCurrency(t)); !strings.Contains(r.stderr, "stop `strata projection run` first") {
		t.Fatalf("changed apply while running: %q", r.stderr)
	}
	if got := versionStates(t, dir, "account_balances"); len(got) != 1 || got[1] != projection.VersionServing {
		t.Fatalf("versions: %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "projections", "account_balances.yaml")); bytes.Contains(b, []byte("currency")) {
		t.Fatal("the refused apply stored its spec")
	}
	// An unchanged apply waits for the other process to reach the head.
	run(ExitOK, "bank", "deposit", "ada", "3")
	r := run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	var st projectionStatusJSON
	if json.Unmarshal([]byte(r.stdout), &st); st.Position != 2 || st.Version != 1 {
		t.Fatalf("unchanged apply while running: %s", r.stdout)
	}
}

// A serving version that failed is fixed forward: applying a corrected
// definition builds version 2 without waiting for version 1 to get past its
// failure. A paused projection is neither rebuilt nor waited for.
func TestE2EFixForwardAndPaused(t *testing.T) {
	dir := t.TempDir() + "/log"
	run := cli(t, dir)
	run(ExitOK, "bank", "open", "ada")
	run(ExitOK, "bank", "deposit", "ada", "5")
	good, err := os.ReadFile("../../examples/account_balances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, bytes.Replace(good, []byte("UPDATE account_balances SET balance = dec_sub"), []byte("UPDATE nope SET balance = dec_sub"), 1), 0o644)
	run(ExitOK, "projection", "apply", bad)
	run(ExitOK, "bank", "withdraw", "ada", "1")
	r := run(ExitFailure, "projection", "apply", bad)
	var st projectionStatusJSON
	if json.Unmarshal([]byte(r.stdout), &st); st.State != "failed" || st.Failure == nil || st.Failure.Position != 3 || !strings.Contains(r.stderr, "failed at position 3") {
		t.Fatalf("failing apply: %s %s", r.stdout, r.stderr)
	}
	r = run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	if json.Unmarshal([]byte(r.stdout), &st); st.Version != 2 || st.State != "running" || st.Position != 3 {
		t.Fatalf("fixed apply: %s", r.stdout)
	}
	r = run(ExitOK, "query", "SELECT balance FROM account_balances", "-o", "json")
	if strings.TrimSpace(r.stdout) != `{"balance":"4"}` {
		t.Fatalf("query: %q", r.stdout)
	}

	run(ExitOK, "projection", "pause", "account_balances")
	if r := run(ExitFailure, "projection", "rebuild", "account_balances", "--no-progress"); !strings.Contains(r.stderr, "is paused: resume it first") {
		t.Fatalf("rebuild of a paused projection: %q", r.stderr)
	}
	run(ExitOK, "bank", "deposit", "ada", "1")
	if r := run(ExitFailure, "projection", "apply", "../../examples/account_balances.yaml"); !strings.Contains(r.stderr, "is paused at position 3, before 4") {
		t.Fatalf("apply of a paused projection: %q", r.stderr)
	}
	run(ExitOK, "projection", "resume", "account_balances")
	r = run(ExitOK, "projection", "apply", "../../examples/account_balances.yaml")
	if json.Unmarshal([]byte(r.stdout), &st); st.Version != 2 || st.State != "running" || st.Position != 4 {
		t.Fatalf("apply after resume: %s", r.stdout)
	}
}

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

// The progress bar draws the phase, the counts, the rate and the ETA.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	pb := newProgressBar(&buf)
	pb.report(projection.BuildStatus{Projection: "p", Version: 2, Phase: projection.PhaseReplaying, Position: 500, Head: 1000, Rate: 2_100_000, ETA: 9 * time.Second})
	time.Sleep(400 * time.Millisecond) // a refresh or two (every 150ms)
	pb.report(projection.BuildStatus{Projection: "p", Version: 2, Phase: projection.PhaseSwitched, Position: 1000, Head: 1000})
	pb.finish(nil)
	out := buf.String()
	for _, want := range []string{"p v2 replaying", "500/1000", "50 %", "2.1M events/s ETA 9s", "p v2 switched", "100 %"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar lacks %q:\n%q", want, out)
		}
	}
	// An aborted build ends the bar too.
	buf.Reset()
	pb = newProgressBar(&buf)
	pb.report(projection.BuildStatus{Projection: "p", Version: 3, Phase: projection.PhaseReplaying, Position: 1, Head: 10})
	pb.finish(errors.New("boom"))
}

func TestFormatBuild(t *testing.T) {
	for _, c := range []struct {
		b    projection.BuildStatus
		want string
	}{
		{projection.BuildStatus{Projection: "p", Version: 2, Phase: projection.PhaseReplaying, Position: 1234567, Head: 20000000, Rate: 2.1e6, ETA: 9*time.Second + 100*time.Millisecond},
			"p v2 replaying 1234567/20000000 (6%) 2.1M events/s ETA 9s"},
		{projection.BuildStatus{Projection: "p", Version: 1, Phase: projection.PhaseCatchingUp, Position: 5, Head: 7, Rate: 12345},
			"p v1 catching up 5/7 (71%) 12k events/s ETA 0s"},
		{projection.BuildStatus{Projection: "p", Version: 1, Phase: projection.PhaseReplaying},
			"p v1 replaying"},
		{projection.BuildStatus{Projection: "p", Version: 1, Phase: projection.PhaseAligning, Position: 5, Head: 7},
			"p v1 aligning at 5/7"},
		{projection.BuildStatus{Projection: "p", Version: 1, Phase: projection.PhaseSwitched, Position: 7, Elapsed: 1500 * time.Millisecond},
			"p v1 switched at position 7 after 1.5s"},
	} {
		if got := formatBuild(c.b); got != c.want {
			t.Errorf("formatBuild = %q, want %q", got, c.want)
		}
	}
	// Lines: every phase change, otherwise at most once per interval.
	var buf bytes.Buffer
	pl := newProgressLines(&buf, time.Hour)
	for _, b := range []projection.BuildStatus{
		{Phase: projection.PhaseReplaying},
		{Phase: projection.PhaseReplaying, Position: 5, Head: 10},  // too soon
		{Phase: projection.PhaseReplaying, Position: 10, Head: 10}, // the replay's end
		{Phase: projection.PhaseReplaying, Position: 10, Head: 10}, // again
		{Phase: projection.PhaseCatchingUp, Position: 10, Head: 12},
		{Phase: projection.PhaseCatchingUp, Position: 11, Head: 12},
		{Phase: projection.PhaseSwitched, Position: 12, Head: 12},
	} {
		b.Projection, b.Version = "p", 1
		pl.report(b)
	}
	if n := strings.Count(buf.String(), "\n"); n != 4 {
		t.Errorf("%d lines:\n%s", n, buf.String())
	}
}
