package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// urlEnv names the variable that points the tests at a PostgreSQL server.
const urlEnv = "STRATA_TEST_POSTGRES_URL"

// testURL returns the test database URL, or skips t when none is set.
func testURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv(urlEnv)
	if url == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL tests (set it to e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)", urlEnv)
	}
	return url
}

// newSchema returns the name of a schema no other test uses and drops it,
// with everything in it, when t ends (after the stores t opened are
// closed, their cleanups having been registered later). Open creates it.
func newSchema(t *testing.T, url string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "strata_test_" + hex.EncodeToString(b)
	dropAtEnd(t, url, name)
	return name
}

// dropAtEnd drops schema name, with everything in it, when t ends.
func dropAtEnd(t *testing.T, url, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
}

// openStore opens a store on schema and closes it when t ends.
func openStore(t *testing.T, url, schema string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
