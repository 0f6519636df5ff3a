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

	"github.com/jackc/pgx/v5"
)

// Three strata serve --cluster nodes on one PostgreSQL log: a projection
// applied on one runs on one of them (its lease), commands go through
// another, queries with read-your-writes through a third; the node running
// the projection is killed with SIGKILL and another takes it over from its
// checkpoint.
func TestE2EClusterOfThreeNodes(t *testing.T) {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping strata serve --cluster")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("strata_cluster_e2e_%d", os.Getpid())
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for _, s := range []string{schema, schema + "_cluster"} {
			conn.Exec(ctx, `DROP SCHEMA IF EXISTS "`+s+`" CASCADE`)
		}
	})
	nodes := map[string]*server{}
	for _, n := range []string{"a", "b", "c"} {
		nodes[n] = start(t, t.TempDir(), "127.0.0.1:0", "--postgres", url, "--postgres-schema", schema, "--cluster", "--node", n, "--lease-ttl", "2s")
	}
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
	if err := conn.QueryRow(ctx, `SELECT holder FROM "`+schema+`_cluster".strata_leases WHERE name = 'account_balances'`).Scan(&holder); err != nil {
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
	conn.QueryRow(ctx, `SELECT holder FROM "`+schema+`_cluster".strata_leases WHERE name = 'account_balances'`).Scan(&newHolder)
	if newHolder == holder || nodes[newHolder] == nil {
		t.Fatalf("the lease went from %s to %q", holder, newHolder)
	}

	// What a cluster does not do yet says so.
	var e struct{ Code string }
	changed := bytes.Replace(src, []byte("last_position BIGINT NOT NULL"), []byte("last_position BIGINT NOT NULL, note TEXT"), 1)
	if code := call(survivors[0], http.MethodPut, "/v1/projections/account_balances", "application/yaml", string(changed), &e); code != 409 || e.Code != "conflict" {
		t.Fatalf("a changed definition: %d %+v", code, e)
	}
	if code := call(survivors[0], http.MethodPost, "/v1/projections/account_balances/rebuild", "", "", &e); code != 409 {
		t.Fatalf("rebuild in a cluster: %d %+v", code, e)
	}
	for _, s := range survivors {
		s.stop(t)
	}
}
