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

// recordColumns are the columns scanRecord reads, in order, from a page
// query's inner select (positionedColumns, as e).
const recordColumns = `e.position, e.stream, e.version, e.id, e.type, e.schema, e.data, e.metadata, e.recorded`

// positionedColumns select recordColumns from an event row e joined to
// its transaction's strata_tx row t.
const positionedColumns = `t.first_position + e.ord - 1 AS position, e.stream, e.version, e.id, e.type, e.schema, e.data, e.metadata, e.recorded`

// logPageTemplate is logPage (with {filter}, {limit} and {order} empty)
// and logPageFiltered (see newQueries).
const logPageTemplate = `SELECT h.position, {cols}
FROM {schema}.strata_head h
LEFT JOIN LATERAL (
	SELECT {positioned}
	FROM {txRange} t
	CROSS JOIN LATERAL (
		SELECT e.*
		FROM {schema}.strata_events e
		WHERE e.tx = t.tx AND e.ord > $1 - t.first_position + 1 AND e.ord <= least(h.position, $2) - t.first_position + 1{filter}
		OFFSET 0
	) e{limit}
) e ON true
WHERE h.id = 1{order}`

// queries holds the statements of one store, with its schema filled in.
// They are constant per store, so pgx prepares each once per connection.
type queries struct {
	append          string
	appendGroup     string
	sequence        string
	positions       string
	head            string
	logPage         string
	logPageFiltered string
	streamFwd       string
	streamBack      string
	waiting         string
	adopt           string
	blocker         string
}

func newQueries(schema string) queries {
	// txRange is the positioned transactions holding positions
	// ($1, least(head, $2)], in position order.
	txRange := `(
		SELECT t.tx, t.first_position
		FROM {schema}.strata_tx t
		WHERE t.first_position >= coalesce((
				SELECT s.first_position FROM {schema}.strata_tx s
				WHERE s.first_position <= $1
				ORDER BY s.first_position DESC
				LIMIT 1), 0)
		  AND t.first_position <= least(h.position, $2)
		ORDER BY t.first_position
		OFFSET 0
	)`
	// (A Replacer does not look again at what it put in.)
	txRange = strings.ReplaceAll(txRange, "{schema}", schema)
	r := strings.NewReplacer("{txRange}", txRange, "{schema}", schema, "{cols}", recordColumns, "{positioned}", positionedColumns)
	return queries{
		append: r.Replace(`SELECT status, version, tx FROM {schema}.strata_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`),

		appendGroup: r.Replace(`SELECT statuses, versions, tx FROM {schema}.strata_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`),

		sequence: r.Replace(`SELECT tx, first_position, events FROM {schema}.strata_sequence($1, $2, $3, $4)`),

		// The positions of given (stream, version) pairs, NULL while not
		// positioned.
		// (A lookup per key, by primary key: as a join, a plan made while
		// the table's statistics are young scans the whole table.)
		positions: r.Replace(`SELECT (
	SELECT t.first_position + e.ord - 1
	FROM {schema}.strata_events e
	JOIN {schema}.strata_tx t ON t.tx = e.tx
	WHERE e.stream = k.stream AND e.version = k.version)
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(stream, version, i)
ORDER BY k.i`),

		head: r.Replace(`SELECT position FROM {schema}.strata_head WHERE id = 1`),

		// The committed rows no round has positioned yet, and the oldest
		// one's transaction.
		waiting: r.Replace(`SELECT min(p.txid)::text, coalesce(sum(p.n), 0) FROM {schema}.strata_pending p`),

		adopt: r.Replace(`SELECT {schema}.strata_adopt($1, $2, $3)`),

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
		// filter, with the head read in the same snapshot. Every position
		// up to that head is visible in the snapshot (a round moves the
		// head and positions its transactions in one transaction), so
		// reading up to it never skips a record. The head comes back on
		// every row, and alone (with NULL columns) when no record matches.
		//
		// The transactions come from the one holding position $1 (or the
		// first) to the one holding upper: both bounds are on
		// first_position, because the ranges tile the log. Each one's
		// events are looked up by (tx, ord), only those in range; OFFSET 0
		// keeps the planner from making that a join of whole tables,
		// whatever the statistics say (with autovacuum off a table is
		// never analyzed).
		//
		// logPage is the unfiltered page: positions are dense, so (after,
		// upper] holds exactly upper-after records and the caller bounds
		// the page by upper alone. No LIMIT and no ORDER BY: the rows come
		// in position order from this plan, and the caller sorts them if
		// they do not. logPageFiltered has a filter ($3 types, $4 stream
		// prefix) that may pass few of the range's records: the first $5
		// in position order.
		logPage: r.Replace(strings.NewReplacer("{filter}", "", "{limit}", "", "{order}", "").Replace(logPageTemplate)),

		logPageFiltered: r.Replace(strings.NewReplacer(
			"{filter}", `
		  AND ($3::text[] IS NULL OR e.type = ANY ($3))
		  AND ($4::text = '' OR starts_with(e.stream, $4))
		ORDER BY e.ord`,
			"{limit}", `
	ORDER BY t.first_position, e.ord
	LIMIT $5`,
			"{order}", `
ORDER BY e.position`).Replace(logPageTemplate)),

		// Stream reads see positioned rows only: a committed append is not
		// part of the log until a round has positioned it. found says, in
		// the same snapshot, whether the stream has any (positioned) event:
		// a page can be empty because the stream does not exist or because
		// From lies past its end.
		// (A stream's positioned events are its first versions, so it has
		// one if its first is positioned.)
		streamFwd: r.Replace(`SELECT x.found, {cols}
FROM (SELECT EXISTS (SELECT 1 FROM {schema}.strata_events s JOIN {schema}.strata_tx t ON t.tx = s.tx WHERE s.stream = $1 AND s.version = 1) AS found) x
LEFT JOIN LATERAL (
	SELECT {positioned}
	FROM {schema}.strata_events e
	JOIN {schema}.strata_tx t ON t.tx = e.tx
	WHERE e.stream = $1 AND e.version >= $2
	ORDER BY e.version
	LIMIT $3
) e ON true
ORDER BY e.version`),

		streamBack: r.Replace(`SELECT x.found, {cols}
FROM (SELECT EXISTS (SELECT 1 FROM {schema}.strata_events s JOIN {schema}.strata_tx t ON t.tx = s.tx WHERE s.stream = $1 AND s.version = 1) AS found) x
LEFT JOIN LATERAL (
	SELECT {positioned}
	FROM {schema}.strata_events e
	JOIN {schema}.strata_tx t ON t.tx = e.tx
	WHERE e.stream = $1 AND e.version <= $2
	ORDER BY e.version DESC
	LIMIT $3
) e ON true
ORDER BY e.version DESC`),
	}
}
