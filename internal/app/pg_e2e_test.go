package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// strata serve --postgres keeps the log in PostgreSQL: what it served is
// there after a restart, and the data directory, which derives from that
// log, refuses to serve another.
func TestE2EServeOnPostgres(t *testing.T) {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping strata serve --postgres")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("strata_e2e_%d", os.Getpid())
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
	})
	dir := t.TempDir()
	pg := []string{"--postgres", url, "--postgres-schema", schema}
	s := start(t, dir, "127.0.0.1:0", pg...)
	c := newClient(t, s)
	if _, err := c.Append(ctx, "notes-1", store.NoStream, event.Event{Type: "note.added", Data: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	amount, _ := num.Parse("6000")
	if d, err := c.Authorize(ctx, rules.Transaction{User: "u1", Amount: amount}); err != nil || d.Outcome != "deny" {
		t.Fatalf("authorize: %+v, %v", d, err)
	}
	// The log's stall gauges are there (and say nothing is held back).
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nstrata_log_stalled_seconds 0\n", "\nstrata_log_stalled_events 0\n"} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	s.stop(t)
	s = start(t, dir, "127.0.0.1:0", pg...)
	c = newClient(t, s)
	for stream, want := range map[string]string{"notes-1": "[note.added]", "txn-u1": "[transaction transaction.decided]"} {
		var types []string
		for rec, err := range c.ReadStream(ctx, stream, store.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, rec.Type)
		}
		if fmt.Sprint(types) != want {
			t.Fatalf("%s after a restart: %v, want %s", stream, types, want)
		}
	}
	s.stop(t)
	out, err := exec.Command(binary, "serve", "--data", dir, "--addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "derives from the log") {
		t.Fatalf("the directory with the embedded log: %v: %s", err, out)
	}
}
