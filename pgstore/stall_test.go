package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// A transaction left open elsewhere holds the log back; the store names it
// (pid, application) once the wait passes StallAfter, and says when it
// ends.
func TestAStalledLogNamesTheOpenTransaction(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	s, err := Open(t.Context(), url, Options{Schema: schema, MaxConns: 4, StallAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "the-forgotten-session"
	blocker, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	var pid int
	if err := blocker.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // it has written, as far as positions go
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "held-1", store.NoStream, event.Event{Type: "t", Data: []byte(`{}`)})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	var st Stall
	for {
		if st = s.Stall(); st.Waiting > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the append finished (%v) while a transaction older than it was open", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no stall reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Waiting != 1 || st.For < 200*time.Millisecond || !strings.Contains(st.Blocker, fmt.Sprintf("pid %d", pid)) || !strings.Contains(st.Blocker, "the-forgotten-session") {
		t.Fatalf("stall = %+v; want one event waiting for pid %d", st, pid)
	}

	if _, err := blocker.Exec(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for s.Stall().Waiting != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stall outlived its transaction: %+v", s.Stall())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
