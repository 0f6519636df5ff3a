package pgstore

import (
	"strings"
)

// Advisory lock classes: the first key of the two-key advisory locks. The
// second key is derived from the schema name (schemaKey), so that stores in
// different schemas of one database neither wait for each other nor share
// migrations.
const (
	lockClassMigrate  int32 = 0x53545201 // "STR\x01": migrations
	lockClassSequence int32 = 0x53545202 // "STR\x02": sequencer rounds
)

// roundLimit bounds the rows one sequencer round positions (a round never
// splits a transaction, so a single larger transaction still goes whole).
const roundLimit = 10000

// Append outcomes reported by strata_append (see the migration).
const (
	statusAppended = 0
	statusRetry    = 1
	statusWrong    = 2
	statusAgain    = 3
	statusDupID    = 4
)

// Expected-version kinds as strata_append takes them.
const (
	kindAny          = 0
	kindStreamExists = 1
	kindExactly      = 2
)

// recordColumns are the columns scanRecord reads, in order.
const recordColumns = `e.position, e.stream, e.version, e.id, e.type, e.schema, e.data, e.metadata, e.recorded`

// queries holds the statements of one store, with its schema filled in.
// They are constant per store, so pgx prepares each once per connection.
type queries struct {
	append      string
	appendGroup string
	sequence    string
	positions   string
	head        string
	logPage     string
	streamFwd   string
	streamBack  string
	waiting     string
	blocker     string
}

func newQueries(schema string) queries {
	r := strings.NewReplacer("{schema}", schema, "{cols}", recordColumns)
	return queries{
		append: r.Replace(`SELECT status, version, txid FROM {schema}.strata_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`),

		appendGroup: r.Replace(`SELECT statuses, versions, txid FROM {schema}.strata_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`),

		sequence: r.Replace(`SELECT txid, first_position, events FROM {schema}.strata_sequence($1, $2, $3, $4)`),

		// The positions of given (stream, version) pairs, NULL while not
		// positioned.
		positions: r.Replace(`SELECT e.position
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(stream, version, i)
LEFT JOIN {schema}.strata_events e ON e.stream = k.stream AND e.version = k.version
ORDER BY k.i`),

		head: r.Replace(`SELECT position FROM {schema}.strata_head WHERE id = 1`),

		// The committed rows no round has positioned yet (the partial
		// index holds exactly those), and the oldest one's transaction.
		waiting: r.Replace(`SELECT min(e.txid)::text, count(*) FROM {schema}.strata_events e WHERE e.position IS NULL`),

		// The oldest transaction still open in the cluster: a session, or a
		// prepared transaction nobody committed. (Only transactions that
		// wrote hold positions back: they have a transaction id.)
		blocker: `SELECT b.who FROM (
	SELECT age(a.backend_xid) AS age, format('session pid %s (user %s, application %s, client %s, database %s, %s, transaction open for %s s): %s',
		a.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '?'), coalesce(a.client_addr::text, 'local'),
		coalesce(a.datname::text, '?'), coalesce(a.state, '?'), round(extract(epoch FROM clock_timestamp() - a.xact_start)::numeric, 1),
		left(coalesce(a.query, ''), 200)) AS who
	FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL
	UNION ALL
	SELECT age(p.transaction), format('prepared transaction %L (owner %s, database %s, prepared at %s): COMMIT PREPARED or ROLLBACK PREPARED it',
		p.gid, p.owner, p.database, p.prepared)
	FROM pg_prepared_xacts p
) b ORDER BY b.age DESC LIMIT 1`,

		// One page of the log: the records in (after, upper] that pass the
		// filter, at most limit of them, with the head read in the same
		// snapshot. Every position up to that head is visible in the
		// snapshot (a round moves the head and positions its rows in one
		// transaction), so reading up to it never skips a record. The head
		// comes back on every row, and alone (with NULL columns) when no
		// record matches.
		logPage: r.Replace(`SELECT h.position, {cols}
FROM {schema}.strata_head h
LEFT JOIN LATERAL (
	SELECT {cols}
	FROM {schema}.strata_events e
	WHERE e.position > $1 AND e.position <= least(h.position, $2)
	  AND ($3::text[] IS NULL OR e.type = ANY ($3))
	  AND ($4::text = '' OR starts_with(e.stream, $4))
	ORDER BY e.position
	LIMIT $5
) e ON true
WHERE h.id = 1
ORDER BY e.position`),

		// Stream reads see positioned rows only: a committed append is not
		// part of the log until a round has positioned it. found says, in
		// the same snapshot, whether the stream has any (positioned) event:
		// a page can be empty because the stream does not exist or because
		// From lies past its end.
		streamFwd: r.Replace(`SELECT x.found, {cols}
FROM (SELECT EXISTS (SELECT 1 FROM {schema}.strata_events s WHERE s.stream = $1 AND s.position IS NOT NULL) AS found) x
LEFT JOIN LATERAL (
	SELECT {cols} FROM {schema}.strata_events e
	WHERE e.stream = $1 AND e.version >= $2 AND e.position IS NOT NULL
	ORDER BY e.version
	LIMIT $3
) e ON true
ORDER BY e.version`),

		streamBack: r.Replace(`SELECT x.found, {cols}
FROM (SELECT EXISTS (SELECT 1 FROM {schema}.strata_events s WHERE s.stream = $1 AND s.position IS NOT NULL) AS found) x
LEFT JOIN LATERAL (
	SELECT {cols} FROM {schema}.strata_events e
	WHERE e.stream = $1 AND e.version <= $2 AND e.position IS NOT NULL
	ORDER BY e.version DESC
	LIMIT $3
) e ON true
ORDER BY e.version DESC`),
	}
}
