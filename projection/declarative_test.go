package projection

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

const balancesYAML = `
name: balances
tables:
  - CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, owner TEXT, currency TEXT, balance TEXT NOT NULL, channel TEXT, updated_position INTEGER, note TEXT)
on:
  acct.opened: |
    INSERT INTO balances (account, owner, currency, balance, updated_position, note)
    VALUES (:stream_id, :data.owner.name, :data.currency, '0', :position, 'it''s :not_a_param')
  acct.deposited: |
    UPDATE balances SET balance = dec_add(balance, :data.amount), channel = :metadata.channel, updated_position = :position
    WHERE account = :stream_id
`

func TestDeclarativeProjectionBindsEventFields(t *testing.T) {
	f := newFixture(t)
	p, err := ParseSpec([]byte(balancesYAML))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.log.Append(ctx, "acct-1", store.Any, event.Event{Type: "acct.opened", Data: []byte(`{"currency":"EUR","owner":{"name":"Ada"}}`)})
	f.log.Append(ctx, "acct-1", store.Any,
		event.Event{Type: "acct.deposited", Data: []byte(`{"amount":0.1}`), Metadata: []byte(`{"channel":"atm"}`)},
		event.Event{Type: "acct.deposited", Data: []byte(`{"amount":"0.2"}`)},
		event.Event{Type: "ignored.type", Data: []byte(`{}`)},
	)
	last := f.append(t, "acct-1", "acct.deposited", 0) // {"n":0}: no amount → NULL → +0
	r := NewRunner(p, f.db, f.log, Options{})
	start(t, r)
	waitFor(t, r, last.LastPosition)
	var owner, currency, balance, note string
	var channel *string
	var pos int64
	if err := f.db.QueryRow(`SELECT owner, currency, balance, channel, updated_position, note FROM balances WHERE account = '1'`).Scan(&owner, &currency, &balance, &channel, &pos, &note); err != nil {
		t.Fatal(err)
	}
	if currency != "EUR" {
		t.Fatalf("currency = %q: parameters of one statement read the wrong fields", currency)
	}
	// 0.1 + 0.2 is exactly 0.3: the JSON number is bound as its text and
	// dec_add adds decimals, not floats.
	if owner != "Ada" || balance != "0.3" || channel != nil || pos != int64(last.LastPosition) || note != "it's :not_a_param" {
		t.Fatalf("row = %s %s %v %d %q", owner, balance, channel, pos, note)
	}
}

func TestSpecErrorsAreReportedTogether(t *testing.T) {
	cases := []struct {
		yaml string
		want []string
	}{
		{`name: x
tables: ["CREATE TABLE t (a)"]
on:
  a: "INSERT INTO t VALUES (:dta.x)"
  b: "INSERT INTO t VALUES (:data)"
  c: "INSERT INTO t VALUES ('open"`, []string{"on a: unknown parameter :dta.x", "on b: parameter :data names no field", "on c: unterminated ' quote"}},
		{`name: x
tables: ["CREATE TABLE t (a)"]
on: {a: "INSERT INTO t VALUES (:position.x)"}`, []string{"position has no fields"}},
		{`name: ""`, []string{"name", "no tables", "no event handlers"}},
		{`name: x
tables: ["CREATE TABLE t (a)"]
on: {a: "SELECT 1"}
extra: 1`, []string{"field extra not found"}},
		{`name: x
tables: ["CREATE TABLE t (a)"]
on: {a: "SELECT 1"}
postgres:
  on: {b: "SELECT 2", a: "SELECT :nope"}`, []string{"postgres.on b: the spec has no statement for b", "postgres.on a: unknown parameter :nope"}},
		{`name: x
tables: ["CREATE TABLE t (a)"]
on: {a: "SELECT 1"}
postgres: {}`, []string{"postgres: neither tables nor on"}},
	}
	for _, tc := range cases {
		_, err := ParseSpec([]byte(tc.yaml))
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("spec %q: error %v lacks %q", tc.yaml, err, w)
			}
		}
	}
}

func TestCompileStatementLeavesCastsAndLiteralsAlone(t *testing.T) {
	st, err := compileStatement(`SELECT :position, x::text, ':data.no', "col:umn", :data.a.b_2`)
	if err != nil {
		t.Fatal(err)
	}
	if st.sql != `SELECT $1, x::text, ':data.no', "col:umn", $2` || len(st.params) != 2 || st.params[1].name != "data.a.b_2" {
		t.Fatalf("compiled %q with %d params", st.sql, len(st.params))
	}
}

// A spec's postgres section replaces its tables and the statements it names
// when the read model is in PostgreSQL, and nothing in SQLite.
func TestSpecPostgresVariant(t *testing.T) {
	spec := `name: notes
tables: ["CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT, db TEXT)"]
on:
  note.added: "INSERT INTO notes (id, body, db) VALUES (:stream_id, :data.body, 'sqlite')"
  note.edited: "UPDATE notes SET body = :data.body WHERE id = :stream_id"
postgres:
  tables: ["CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT, db TEXT, words tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body, ''))) STORED)"]
  on:
    note.added: "INSERT INTO notes (id, body, db) VALUES (:stream_id, :data.body, 'postgres')"
`
	eachDB(t, func(t *testing.T, f *fixture) {
		p, err := ParseSpec([]byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		f.append(t, "note-1", "note.added", 0)
		ctx := context.Background()
		f.log.Append(ctx, "note-1", store.Any, event.Event{Type: "note.edited", Data: []byte(`{"body":"hello strata"}`)})
		last, _ := f.log.Append(ctx, "note-2", store.Any, event.Event{Type: "note.added", Data: []byte(`{"body":"second"}`)})
		r := NewRunner(p, f.db, f.log, Options{})
		start(t, r)
		waitFor(t, r, last.LastPosition)
		want := "sqlite"
		if isPostgres(f.db) {
			want = "postgres"
			var n int
			if err := f.db.QueryRow(`SELECT count(*) FROM notes WHERE words @@ to_tsquery('simple', 'strata')`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("text search found %d, %v", n, err)
			}
		}
		var body, db string
		if err := f.db.QueryRow(`SELECT body, db FROM notes WHERE id = '1'`).Scan(&body, &db); err != nil || body != "hello strata" || db != want {
			t.Fatalf("row = %q %q, %v; want the %s statements", body, db, err, want)
		}
	})
}

// A declarative projection's statements go to PostgreSQL a batch at a
// time; an event whose statement fails still stops the projection at that
// event, with everything before it applied once and its error named.
func TestDeclarativeBatchStopsAtTheFailingEvent(t *testing.T) {
	spec := `name: notes
tables: ["CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, edits BIGINT NOT NULL DEFAULT 0)"]
on:
  note.added: "INSERT INTO notes (id, body) VALUES (:stream_id, :data.body)"
  note.edited: "UPDATE notes SET body = :data.body, edits = notes.edits + 1 WHERE id = :stream_id"
`
	eachDB(t, func(t *testing.T, f *fixture) {
		p, err := ParseSpec([]byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		add := func(stream, typ, data string) store.AppendResult {
			t.Helper()
			res, err := f.log.Append(ctx, stream, store.Any, event.Event{Type: typ, Data: []byte(data)})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		for i := range 20 {
			add(fmt.Sprintf("note-%d", i), "note.added", fmt.Sprintf(`{"body":"b%d"}`, i))
			add(fmt.Sprintf("note-%d", i), "note.edited", fmt.Sprintf(`{"body":"c%d"}`, i))
		}
		bad := add("note-x", "note.added", `{}`) // body NULL: refused
		add("note-y", "note.added", `{"body":"after"}`)
		r := NewRunner(p, f.db, f.log, Options{Retries: 1, Backoff: time.Millisecond})
		start(t, r)
		waitState(t, r, StateFailed)
		st := r.Status()
		if st.Failure == nil || st.Failure.Position != bad.LastPosition || st.Position != bad.LastPosition-1 || !strings.Contains(st.Failure.Err, fmt.Sprintf("event %d", bad.LastPosition)) {
			t.Fatalf("status %+v (failure %+v)", st, st.Failure)
		}
		var n, edits int
		if err := f.db.QueryRow(`SELECT count(*), sum(edits) FROM notes`).Scan(&n, &edits); err != nil || n != 20 || edits != 20 {
			t.Fatalf("%d notes with %d edits, %v: want each event before the failing one applied once", n, edits, err)
		}
	})
}

// Two runners of one declarative projection (its statements batched on
// PostgreSQL) never apply an event twice.
func TestTwoRunnersOfADeclarativeProjectionApplyEachEventOnce(t *testing.T) {
	spec := `name: tally
tables: ["CREATE TABLE IF NOT EXISTS tally (stream TEXT PRIMARY KEY, n BIGINT NOT NULL)"]
on:
  t: "INSERT INTO tally (stream, n) VALUES (:stream, 1) ON CONFLICT (stream) DO UPDATE SET n = tally.n + 1"
`
	eachDB(t, func(t *testing.T, f *fixture) {
		for i := range 300 {
			f.append(t, fmt.Sprintf("s-%d", i%7), "t", i)
		}
		var runners []*Runner
		for _, size := range []int{7, 11} {
			p, err := ParseSpec([]byte(spec))
			if err != nil {
				t.Fatal(err)
			}
			r := NewRunner(p, f.db, f.log, Options{BatchSize: size})
			start(t, r)
			runners = append(runners, r)
		}
		last := f.append(t, "s-0", "t", 0)
		for _, r := range runners {
			waitFor(t, r, last.LastPosition)
		}
		var n int
		if err := f.db.QueryRow(`SELECT sum(n) FROM tally`).Scan(&n); err != nil || n != 301 {
			t.Fatalf("%d events counted, %v: some were applied twice or lost", n, err)
		}
	})
}
