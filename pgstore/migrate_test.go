package pgstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/event"
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

// TestUpgradeFrom0001 builds a schema at migration 1 and fills it as a
// build of that time would (strata_append and strata_sequence, with some
// committed rows left unpositioned), then opens it: the upgrade keeps every
// record, version and position, positions the leftover rows after them, and
// the store appends on.
func TestUpgradeFrom0001(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	key := schemaKey(schema)
	if err := migrateWith(ctx, pool, schema, key, ms[:1], nil); err != nil {
		t.Fatal(err)
	}
	qs := pgx.Identifier{schema}.Sanitize()
	// The statements of the build of that time.
	oldAppend := `SELECT status, version, txid FROM ` + qs + `.strata_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	oldSequence := `SELECT txid, first_position, events FROM ` + qs + `.strata_sequence($1, $2, $3, $4)`
	old := &Store{q: newQueries(qs)} // for newAppendReq only
	old.opts.ensureDefaults()

	type row struct {
		stream   string
		version  int64
		id       event.ID
		position int64 // 0: not positioned
	}
	var rows []row
	appendOld := func(stream string, exp store.ExpectedVersion, n int) {
		t.Helper()
		req, err := old.newAppendReq(ctx, stream, exp, testEvents(n, "old"))
		if err != nil {
			t.Fatal(err)
		}
		var status int32
		var version int64
		var txid pgtype.Text
		if err := pool.QueryRow(ctx, oldAppend, req.args()...).Scan(&status, &version, &txid); err != nil || status != statusAppended {
			t.Fatalf("strata_append(%q): status %d, %v", stream, status, err)
		}
		for i, id := range req.ids {
			rows = append(rows, row{stream: stream, version: version - int64(n) + 1 + int64(i), id: id.Bytes})
		}
	}
	sequence := func() {
		t.Helper()
		if _, err := pool.Exec(ctx, oldSequence, lockClassSequence, key, channelName(schema), roundLimit); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		appendOld(fmt.Sprint("old-", i%4), store.Any, i%3+1)
		if i%7 == 6 {
			sequence()
		}
	}
	sequence()
	appendOld("old-0", store.Any, 2) // committed, never positioned by the old build
	appendOld("old-5", store.NoStream, 1)

	// The positions the old build gave.
	byID := map[event.ID]*row{}
	for i := range rows {
		byID[rows[i].id] = &rows[i]
	}
	res, err := pool.Query(ctx, `SELECT id, coalesce(position, 0) FROM `+qs+`.strata_events`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for res.Next() {
		var id pgtype.UUID
		var pos int64
		if err := res.Scan(&id, &pos); err != nil {
			t.Fatal(err)
		}
		byID[id.Bytes].position = pos
		n++
	}
	if res.Err() != nil || n != len(rows) {
		t.Fatalf("read %d rows back (%v), want %d", n, res.Err(), len(rows))
	}
	// The old rounds positioned 1..positioned: usually all rows but the
	// last two appends', fewer if another transaction of the cluster (a
	// test running beside this one) was open when they ran.
	positioned := 0
	for _, r := range rows {
		if byID[r.id].position > 0 {
			positioned++
		}
	}
	if positioned == len(rows) {
		t.Fatal("every row was positioned before the upgrade: the test needs some that were not")
	}

	s := openStore(t, url, schema)
	var applied int
	if err := pool.QueryRow(ctx, `SELECT max(version) FROM `+qs+`.strata_migrations`).Scan(&applied); err != nil || applied != len(ms) {
		t.Fatalf("after Open the schema is at migration %d (%v), want %d", applied, err, len(ms))
	}
	// Open's store positions the leftover rows (at the latest at its first
	// idle round); an append's own round does it at once.
	newEvs := testEvents(2, "new")
	added, err := s.Append(ctx, "old-1", store.Any, newEvs...)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(rows) + 2); added.LastPosition != want {
		t.Fatalf("new append at %d..%d, want to end at %d", added.FirstPosition, added.LastPosition, want)
	}

	var got []event.Record
	for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != len(rows)+2 {
		t.Fatalf("ReadAll after the upgrade: %d records, want %d", len(got), len(rows)+2)
	}
	for i, r := range got {
		if r.Position != uint64(i+1) {
			t.Fatalf("record %d at position %d", i, r.Position)
		}
		if i >= len(rows) {
			if r.ID != newEvs[i-len(rows)].ID {
				t.Fatalf("position %d: %s, want the new append's event", r.Position, r.ID)
			}
			continue
		}
		w := byID[r.ID]
		if w == nil || w.stream != r.Stream || uint64(w.version) != r.Version {
			t.Fatalf("position %d: %s@%d (%s), not an event written before the upgrade there", r.Position, r.Stream, r.Version, r.ID)
		}
		if i < positioned && uint64(w.position) != r.Position {
			t.Fatalf("%s@%d: position %d after the upgrade, %d before", r.Stream, r.Version, r.Position, w.position)
		}
		if i >= positioned && w.position != 0 {
			t.Fatalf("%s@%d: positioned before the upgrade, but read after the old positions", r.Stream, r.Version)
		}
	}
	// Streams read back whole, in version order.
	for _, stream := range []string{"old-0", "old-1", "old-2", "old-3", "old-5"} {
		var v uint64
		for r, err := range s.ReadStream(ctx, stream, store.ReadStreamOptions{}) {
			if err != nil {
				t.Fatalf("ReadStream(%q): %v", stream, err)
			}
			v++
			if r.Version != v {
				t.Fatalf("ReadStream(%q): version %d, want %d", stream, r.Version, v)
			}
			if w := byID[r.ID]; w != nil && (w.stream != stream || uint64(w.version) != v) {
				t.Fatalf("ReadStream(%q)@%d: %s was written at %s@%d", stream, v, r.ID, w.stream, w.version)
			}
		}
		if v == 0 {
			t.Fatalf("ReadStream(%q): empty", stream)
		}
	}
}

// TestAdoptRestoredDump opens a schema as a dump restored into another
// cluster leaves it: transactions that had committed but were not
// positioned when the dump was taken are in strata_pending with txids of
// the old cluster, which mean nothing here (these are far above this
// cluster's, so no round would ever take them). Open positions them, in
// their old txid order, after what was positioned; streams go on from
// them; a second Open finds nothing to do.
func TestAdoptRestoredDump(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := openStore(t, url, schema)
	for i := range 5 {
		if _, err := s.Append(ctx, fmt.Sprint("kept-", i%2), store.Any, testEvents(2, "kept")...); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	qs := pgx.Identifier{schema}.Sanitize()
	// Two transactions of the old cluster: the later one (by txid) first.
	// Each holds rows of one stream; "late" gets events from both.
	foreign := []struct {
		txidAbove int64 // how far above this cluster's current txid
		stream    string
		versions  []int64
	}{
		{txidAbove: 2_000_000_000, stream: "late", versions: []int64{3}},
		{txidAbove: 1_000_000_000, stream: "late", versions: []int64{1, 2}},
	}
	var want []string // stream@version in the positions they must get
	for _, f := range foreign[1:] {
		for _, v := range f.versions {
			want = append(want, fmt.Sprintf("%s@%d", f.stream, v))
		}
	}
	for _, v := range foreign[0].versions {
		want = append(want, fmt.Sprintf("%s@%d", foreign[0].stream, v))
	}
	for _, f := range foreign {
		_, err := pool.Exec(ctx, `WITH k AS (SELECT nextval('`+schema+`.strata_tx_seq') AS tx),
e AS (
	INSERT INTO `+qs+`.strata_events (tx, ord, stream, version, id, type, schema)
	SELECT k.tx, v.i, $1, v.version, gen_random_uuid(), 'restored', 0
	FROM k, unnest($2::bigint[]) WITH ORDINALITY AS v(version, i)
)
INSERT INTO `+qs+`.strata_pending (tx, txid, n)
SELECT k.tx, (pg_current_xact_id()::text::bigint + $3)::text::xid8, cardinality($2) FROM k`,
			f.stream, f.versions, f.txidAbove)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE `+qs+`.strata_head SET cluster = cluster + 1`); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, url, schema)
	var got []string
	for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Position != uint64(len(got)+1) {
			t.Fatalf("record %d at position %d", len(got)+1, r.Position)
		}
		got = append(got, fmt.Sprintf("%s@%d", r.Stream, r.Version))
	}
	if len(got) != 10+len(want) || !slices.Equal(got[10:], want) {
		t.Fatalf("after the restore the log is %v; want 10 kept events, then %v", got, want)
	}
	res, err := s.Append(ctx, "late", store.Exactly(3), testEvents(1, "after")...)
	if err != nil || res.Version != 4 || res.FirstPosition != uint64(len(got)+1) {
		t.Fatalf("append after the restored events: %+v, %v", res, err)
	}
	s.Close()

	var adopted int64
	if adopted, err = migrate(ctx, pool, schema, schemaKey(schema)); err != nil || adopted != 0 {
		t.Fatalf("a second open adopted %d transactions (%v), want 0", adopted, err)
	}
}

// TestQuotedSchemaName opens a schema whose name holds both kinds of
// quotes, which the migrations must put in identifiers and in string
// literals (nextval's argument) alike, and appends and reads there.
func TestQuotedSchemaName(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url) + `_o'k"s`
	dropAtEnd(t, url, schema)
	ctx := t.Context()
	s := openStore(t, url, schema)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := s.Append(ctx, fmt.Sprint("s-", i%3), store.Any, testEvents(2, "q")...); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n := 0
	for r, err := range s.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; r.Position != uint64(n) {
			t.Fatalf("record %d at position %d", n, r.Position)
		}
	}
	if n != 16 {
		t.Fatalf("read %d records, want 16", n)
	}
}
