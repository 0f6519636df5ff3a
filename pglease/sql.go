package pglease

import "strings"

// queries are the statements of one schema.
type queries struct {
	ddl, heartbeat, ensure, renew, claim, release, leave string
}

func newQueries(schema string) queries {
	r := strings.NewReplacer("{schema}", schema)
	return queries{
		ddl: r.Replace(`
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.strata_leases (
	name       text PRIMARY KEY,
	holder     text,
	token      bigint NOT NULL DEFAULT 0,
	expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE TABLE IF NOT EXISTS {schema}.strata_nodes (
	node       text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);`),

		// The node's heartbeat, and the number of live nodes (counting
		// this one). Nodes long gone are forgotten.
		heartbeat: r.Replace(`WITH beat AS (
	INSERT INTO {schema}.strata_nodes (node, expires_at)
	VALUES ($1, clock_timestamp() + make_interval(secs => $2))
	ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at
), gone AS (
	DELETE FROM {schema}.strata_nodes WHERE expires_at < clock_timestamp() - interval '1 day'
)
SELECT 1 + count(*)::int FROM {schema}.strata_nodes WHERE node <> $1 AND expires_at > clock_timestamp()`),

		ensure: r.Replace(`INSERT INTO {schema}.strata_leases (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`),

		// Renewal keeps what is still this node's, expired or not: nobody
		// else took it meanwhile, since the holder is still this node.
		renew: r.Replace(`UPDATE {schema}.strata_leases
SET expires_at = clock_timestamp() + make_interval(secs => $2)
WHERE holder = $1 AND name = ANY ($3::text[])
RETURNING name, token`),

		// Claim up to $4 free or expired leases, skipping rows another node
		// is claiming at this moment.
		claim: r.Replace(`UPDATE {schema}.strata_leases l
SET holder = $1, token = l.token + 1, expires_at = clock_timestamp() + make_interval(secs => $2)
FROM (
	SELECT name FROM {schema}.strata_leases
	WHERE name = ANY ($3::text[]) AND (holder IS NULL OR expires_at <= clock_timestamp())
	ORDER BY name
	LIMIT $4
	FOR UPDATE SKIP LOCKED
) c
WHERE l.name = c.name
RETURNING l.name, l.token`),

		release: r.Replace(`UPDATE {schema}.strata_leases SET holder = NULL, expires_at = '-infinity'
WHERE holder = $1 AND name = ANY ($2::text[])`),

		leave: r.Replace(`DELETE FROM {schema}.strata_nodes WHERE node = $1`),
	}
}
