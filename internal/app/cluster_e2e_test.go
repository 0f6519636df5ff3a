package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// Three strata serve --cluster nodes on one PostgreSQL log: a projection
// applied on one runs on one of them (its lease), commands go through
// another, queries with read-your-writes through a third; the node running
// the projection is killed with SIGKILL and another takes it over from its
// checkpoint.
func TestE2EClusterOfThreeNodes(t *testing.T) {
	ctx := context.Background()
	url, schema, nodes := startCluster(t, "strata_cluster_e2e", "a", "b", "c")
	call := func(s *server, method, path, contentType, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v; the server's stderr:\n%s", method, path, err, s.stderr)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %s: %v", method, path, b, err)
			}
		}
		return resp.StatusCode
	}
	src, err := os.ReadFile("../../examples/account_balances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if code := call(nodes["a"], http.MethodPut, "/v1/projections/account_balances", "application/yaml", string(src), nil); code != http.StatusAccepted {
		t.Fatalf("apply on a: %d", code)
	}
	// It builds its first version, then serves.
	waitVersion := func(s *server, version int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			var st struct {
				Version int
				State   string
			}
			call(s, http.MethodGet, "/v1/projections/account_balances", "", "", &st)
			if st.Version == version && st.State == "running" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("version %d is not serving within 30 s: %+v; stderr:\n%s", version, st, s.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitVersion(nodes["a"], 1)
	var r struct{ Position int }
	call(nodes["b"], http.MethodPost, "/v1/bank/ada/open", "application/json", `{"owner":"Ada"}`, &r)
	call(nodes["b"], http.MethodPost, "/v1/bank/ada/deposit", "application/json", `{"amount":"100.25"}`, &r)
	balance := func(s *server, pos int) string {
		t.Helper()
		var q struct {
			Rows     [][]any
			Reflects int
		}
		body := fmt.Sprintf(`{"sql":"SELECT balance FROM account_balances WHERE account = $1","args":["ada"],"min_position":%d,"timeout_ms":30000}`, pos)
		if code := call(s, http.MethodPost, "/v1/query", "application/json", body, &q); code != 200 || len(q.Rows) != 1 || q.Reflects < pos {
			t.Fatalf("query at %d: %d %+v; stderr:\n%s", pos, code, q, s.stderr)
		}
		return fmt.Sprint(q.Rows[0][0])
	}
	if got := balance(nodes["c"], r.Position); got != "100.25" {
		t.Fatalf("balance on c = %s", got)
	}
	// Every node lists it, running.
	for n, s := range nodes {
		var st struct {
			State    string
			Position int
		}
		if code := call(s, http.MethodGet, "/v1/projections/account_balances", "", "", &st); code != 200 || st.State != "running" || st.Position < r.Position {
			t.Fatalf("status on %s: %d %+v", n, code, st)
		}
	}

	// Its metrics are on every node.
	resp, err := http.Get(nodes["a"].url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `strata_projection_state{projection="account_balances",state="running"} 1`) {
		t.Fatalf("/metrics lacks the projection's state")
	}

	// Pause and resume from any node, whichever runs it.
	for _, step := range []struct{ op, want string }{{"pause", "paused"}, {"resume", "running"}} {
		var st struct{ State string }
		if code := call(nodes["c"], http.MethodPost, "/v1/projections/account_balances/"+step.op, "", "", &st); code != 200 || st.State != step.want {
			t.Fatalf("%s: %d %+v", step.op, code, st)
		}
	}

	// Kill the node that runs it; another takes over.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var holder string
	if err := conn.QueryRow(ctx, `SELECT holder FROM "`+schema+`_cluster".strata_leases WHERE name = 'account_balances/v1'`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	victim := nodes[holder]
	if victim == nil {
		t.Fatalf("the lease is held by %q", holder)
	}
	victim.cmd.Process.Kill()
	<-victim.exited
	delete(nodes, holder)
	var survivors []*server
	for _, s := range nodes {
		survivors = append(survivors, s)
	}
	call(survivors[0], http.MethodPost, "/v1/bank/ada/withdraw", "application/json", `{"amount":"0.25"}`, &r)
	if got := balance(survivors[1], r.Position); got != "100" {
		t.Fatalf("balance after the takeover = %s", got)
	}
	var newHolder string
	conn.QueryRow(ctx, `SELECT holder FROM "`+schema+`_cluster".strata_leases WHERE name = 'account_balances/v1'`).Scan(&newHolder)
	if newHolder == holder || nodes[newHolder] == nil {
		t.Fatalf("the lease went from %s to %q", holder, newHolder)
	}
	var st struct{ Nodes []string }
	if call(survivors[0], http.MethodGet, "/v1/projections/account_balances", "", "", &st); len(st.Nodes) != 1 || st.Nodes[0] != newHolder {
		t.Fatalf("the status names %v as running it, not %s", st.Nodes, newHolder)
	}

	// A changed definition builds version 2 beside version 1, which
	// answers until version 2 takes over; a rebuild builds version 3.
	changed := bytes.Replace(src, []byte("last_position BIGINT NOT NULL"), []byte("last_position BIGINT NOT NULL, note TEXT DEFAULT 'v2'"), 1)
	if code := call(survivors[0], http.MethodPut, "/v1/projections/account_balances", "application/yaml", string(changed), nil); code != http.StatusAccepted {
		t.Fatalf("a changed definition: %d", code)
	}
	waitVersion(survivors[1], 2)
	var q struct{ Rows [][]any }
	if code := call(survivors[1], http.MethodPost, "/v1/query", "application/json", fmt.Sprintf(`{"sql":"SELECT balance, note FROM account_balances","min_position":%d}`, r.Position), &q); code != 200 || fmt.Sprint(q.Rows) != "[[100 v2]]" {
		t.Fatalf("version 2: %d %v", code, q.Rows)
	}
	if code := call(survivors[0], http.MethodPost, "/v1/projections/account_balances/rebuild", "", "", nil); code != http.StatusAccepted {
		t.Fatalf("rebuild: %d", code)
	}
	waitVersion(survivors[0], 3)
	var e struct{ Code string }
	if code := call(survivors[0], http.MethodPost, "/v1/projections/nothing/rebuild", "", "", &e); code != 404 {
		t.Fatalf("rebuild of an unknown projection: %d %+v", code, e)
	}
	for _, s := range survivors {
		s.stop(t)
	}
}

// A windowed job applied to one node of a cluster runs on one of them; when
// that node is killed, another resumes the job from its checkpoint in
// PostgreSQL, and the output stream holds each result once.
func TestE2EClusterJobMovesToAnotherNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Two shares of each job: the nodes compute half the users each.
	url, schema, nodes := startClusterWith(t, "strata_cluster_jobs_e2e", []string{"--partitions", "2"}, "a", "b")
	spec := "name: spend\ntypes: [transaction]\nkey: user_id\nvalue: amount\ntime: at\nwindow: {type: tumbling, size: 1m}\n"
	req, _ := http.NewRequest(http.MethodPut, nodes["a"].url+"/v1/jobs/spend", strings.NewReader(spec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("apply the job: %d", resp.StatusCode)
	}
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	authorize := func(s *server, user string, amount int64, at time.Duration) {
		t.Helper()
		clusterAuthorize(ctx, t, s, rules.Transaction{User: user, Amount: num.FromMicro(amount * 1_000_000), At: t0.Add(at)})
	}
	authorize(nodes["a"], "u1", 10, 0)
	authorize(nodes["a"], "u1", 20, 20*time.Second)
	authorize(nodes["a"], "u2", 1, 2*time.Minute) // closes the first minute
	// results reads the job's output stream until it holds want results.
	results := func(s *server, want int) []string {
		t.Helper()
		var got []string
		seen := map[string]bool{}
		for rec, err := range newClient(t, s).Subscribe(ctx, store.SubscribeOptions{Filter: store.Filter{StreamPrefix: "job-spend"}}) {
			if err != nil {
				t.Fatalf("waiting for %d results (have %v): %v", want, got, err)
			}
			if seen[rec.ID.String()] {
				t.Fatalf("result %s twice", rec.Data)
			}
			seen[rec.ID.String()] = true
			var r struct {
				Key   string
				Value struct{ N int64 }
			}
			json.Unmarshal(rec.Data, &r)
			got = append(got, fmt.Sprintf("%s:%d", r.Key, r.Value.N))
			if len(got) == want {
				break
			}
		}
		return got
	}
	if got := results(nodes["b"], 1); fmt.Sprint(got) != "[u1:2]" {
		t.Fatalf("first result %v", got)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	holder := func() string {
		var h string
		conn.QueryRow(ctx, `SELECT coalesce(holder, '') FROM "`+schema+`_cluster".strata_leases WHERE name = 'job:spend#0/2' AND expires_at > clock_timestamp()`).Scan(&h)
		return h
	}
	// The two shares run on the two nodes.
	for deadline := time.Now().Add(20 * time.Second); ; {
		var n int
		conn.QueryRow(ctx, `SELECT count(DISTINCT holder) FROM "`+schema+`_cluster".strata_leases WHERE name LIKE 'job:spend#%' AND expires_at > clock_timestamp()`).Scan(&n)
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job's shares run on %d nodes, not 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	victim := holder()
	if nodes[victim] == nil {
		t.Fatalf("the job's lease is held by %q", victim)
	}
	nodes[victim].cmd.Process.Kill()
	<-nodes[victim].exited
	delete(nodes, victim)
	var survivor *server
	var name string
	for n, s := range nodes {
		name, survivor = n, s
	}
	authorize(survivor, "u3", 4, 2*time.Minute+10*time.Second)
	authorize(survivor, "u2", 1, 4*time.Minute) // closes minute two
	got := results(survivor, 3)
	if fmt.Sprint(got[1:]) != "[u2:1 u3:1]" && fmt.Sprint(got[1:]) != "[u3:1 u2:1]" {
		t.Fatalf("results after the takeover %v", got)
	}
	if h := holder(); h != name {
		t.Fatalf("the job's share is held by %q, not %s", h, name)
	}
	resp, err = http.Get(survivor.url + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"nodes":["`+name+`"]`) {
		t.Fatalf("jobs: %s", b)
	}
	survivor.stop(t)
}

// dropSchemas drops the log's schema and every schema of the cluster's
// (its own and its projection versions').
func dropSchemas(t *testing.T, conn *pgx.Conn, schema string) {
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $1 || '\_cluster%'`, schema)
	if err != nil {
		t.Error(err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Error(err)
	}
	for _, s := range names {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			t.Error(err)
		}
	}
}

// A cluster's fraud rules decide on one node, whichever node is asked: the
// velocity rule counts a user's transactions made through any of them, and
// still after the deciding node is killed and another takes over.
func TestE2EClusterAuthorizesOnOneNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url, schema, nodes := startCluster(t, "strata_cluster_rules_e2e", "a", "b")
	t0 := time.Now().UTC().Truncate(time.Second)
	authorize := func(s *server, i int) string {
		t.Helper()
		return clusterAuthorize(ctx, t, s, rules.Transaction{User: "u1", Amount: num.FromMicro(1_000_000), At: t0.Add(time.Duration(i) * time.Second)}).Outcome
	}
	order := []string{"a", "b"}
	for i := range 10 {
		if got := authorize(nodes[order[i%2]], i); got != "approve" {
			t.Fatalf("transaction %d: %s", i, got)
		}
	}
	if got := authorize(nodes["b"], 10); got != "deny" {
		t.Fatalf("the 11th transaction in a minute, through b: %s; the nodes counted apart", got)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var leader string
	if err := conn.QueryRow(ctx, `SELECT holder FROM "`+schema+`_cluster".strata_leases WHERE name = 'rules'`).Scan(&leader); err != nil {
		t.Fatal(err)
	}
	nodes[leader].cmd.Process.Kill()
	<-nodes[leader].exited
	delete(nodes, leader)
	for _, s := range nodes {
		if got := authorize(s, 11); got != "deny" {
			t.Fatalf("after the leader %s died: %s; the new leader forgot its decisions", leader, got)
		}
		s.stop(t)
	}
}

// clusterAuthorize authorizes txn through s, waiting while no node leads
// the rules (before the first renewal, or while one takes over).
func clusterAuthorize(ctx context.Context, t *testing.T, s *server, txn rules.Transaction) api.Decision {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		d, err := newClient(t, s).Authorize(ctx, txn)
		if err == nil {
			return d
		}
		if !strings.Contains(err.Error(), "unavailable") || time.Now().After(deadline) {
			t.Fatalf("authorize through %s: %v; stderr:\n%s", s.url, err, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCluster starts a strata serve --cluster node of each name on a log
// in a fresh schema (prefix and the process id), dropped with the cluster's
// schemas when the test ends; it skips without STRATA_TEST_POSTGRES_URL.
func startCluster(t *testing.T, prefix string, names ...string) (url, schema string, nodes map[string]*server) {
	t.Helper()
	return startClusterWith(t, prefix, nil, names...)
}

// startClusterWith is startCluster with more flags for every node.
func startClusterWith(t *testing.T, prefix string, flags []string, names ...string) (url, schema string, nodes map[string]*server) {
	t.Helper()
	url = os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping strata serve --cluster")
	}
	schema = fmt.Sprintf("%s_%d", prefix, os.Getpid())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		dropSchemas(t, conn, schema)
	})
	nodes = map[string]*server{}
	for _, n := range names {
		nodes[n] = start(t, t.TempDir(), "127.0.0.1:0", append([]string{"--postgres", url, "--postgres-schema", schema, "--cluster", "--node", n, "--lease-ttl", "2s"}, flags...)...)
	}
	return url, schema, nodes
}
