package pgstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratadb/strata/store"
)

// TestMigrateConcurrently opens several stores on one empty schema at
// once: all succeed, the schema is migrated once, and they share the log.
func TestMigrateConcurrently(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const opens = 4
	stores := make([]*Store, opens)
	errs := make([]error, opens)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range opens {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(ctx, url, Options{Schema: schema, MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}

	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated := func(when string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		qs := pgx.Identifier{schema}.Sanitize()
		var rows, versions, maxVersion, heads int
		err = conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version), coalesce(max(version), 0) FROM `+qs+`.strata_migrations`).Scan(&rows, &versions, &maxVersion)
		if err != nil {
			t.Fatal(err)
		}
		if rows != len(ms) || versions != len(ms) || maxVersion != len(ms) {
			t.Fatalf("%s: strata_migrations has %d rows, %d versions, up to %d; want each of the %d migrations once", when, rows, versions, maxVersion, len(ms))
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+qs+`.strata_head`).Scan(&heads); err != nil {
			t.Fatal(err)
		}
		if heads != 1 {
			t.Fatalf("%s: strata_head has %d rows, want 1", when, heads)
		}
	}
	checkMigrated("after concurrent opens")

	// The stores share one log.
	res, err := stores[0].Append(ctx, "shared", store.NoStream, testEvents(2, "shared")...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if head, err := s.Head(ctx); err != nil || head != res.LastPosition {
			t.Fatalf("store %d: Head = %d, %v; want %d", i, head, err, res.LastPosition)
		}
	}
	_, err = stores[1].Append(ctx, "shared", store.NoStream, testEvents(1, "shared")...)
	if d := wrongVersionDiff(err, 2); d != "" {
		t.Fatalf("store 1: Append(NoStream) to a stream store 0 created: %s", d)
	}

	// Opening again migrates nothing.
	s, err := Open(ctx, url, Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open of a migrated schema: %v", err)
	}
	s.Close()
	checkMigrated("after another open")
}

func wrongVersionDiff(err error, actual uint64) string {
	wev, ok := err.(*store.WrongExpectedVersionError)
	switch {
	case !ok:
		return "error " + errString(err) + ", want a *store.WrongExpectedVersionError"
	case wev.Actual != actual:
		return "wrong Actual in " + wev.Error()
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
