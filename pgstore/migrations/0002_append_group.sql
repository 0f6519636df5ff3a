-- 0002: strata_append_group, the appends of a group commit in one call.
-- {schema} is replaced with the quoted schema name before this runs.
--
-- The table and strata_append are unchanged: strata_append stays the slow
-- path (and what older builds call), so a database migrated while nodes of
-- the previous build still run stays consistent.

-- strata_append_group runs several appends, each to a different stream, in
-- the caller's transaction, with exactly strata_append's outcomes (see 0001),
-- but set-based: one statement reads every stream's last event and decides
-- every append, one plain INSERT writes every append that passed. If that
-- INSERT hits a unique violation (another transaction took one of the
-- versions or ids first), its exception block takes all of it back and the
-- passing appends run through strata_append one by one, which sorts out
-- what happened. Like strata_append it never raises for an expected
-- outcome.
--
-- Append a (1-based) is p_streams[a], p_kinds[a], p_expected[a],
-- p_user_ids[a]; its events are the p_counts[a] consecutive elements of the
-- event arrays (p_ids, p_types, ...) after those of the appends before it.
-- The streams must be distinct (a second append to a stream goes in a later
-- call in the same transaction, which sees the first's rows). The rows go in
-- in the arrays' order, so their seq, and so their positions, follow it.
--
-- statuses[a] and versions[a] are strata_append's status and version for
-- append a; txid is the caller's transaction id when any append was
-- appended (else NULL).
CREATE FUNCTION {schema}.strata_append_group(
    p_streams text[], p_kinds int[], p_expected bigint[], p_user_ids boolean[], p_counts int[],
    p_ids uuid[], p_types text[], p_schemas int[], p_data bytea[], p_metadata bytea[],
    OUT statuses int[], OUT versions bigint[], OUT txid text)
LANGUAGE plpgsql AS $fn$
DECLARE
    -- offs[a]: how many events come before append a's; bases[a]: the
    -- stream's version before append a, for the appends that insert.
    offs  bigint[];
    bases bigint[];
    owner bigint[];
    a     int;
    r     record;
BEGIN
    -- Every statement below must see what committed before it started.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'strata_append_group needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;

    -- Read every stream's last event and decide, in strata_append's order:
    -- a retry (the same ids, in order, at the place the append names), a
    -- wrong expected version, a stream whose last event is from a newer
    -- transaction (again), else insert.
    WITH a AS (
        SELECT u.i, u.stream, u.kind, u.expected, u.user_ids, u.n,
               sum(u.n) OVER (ORDER BY u.i) - u.n AS off
        FROM unnest(p_streams, p_kinds, p_expected, p_user_ids, p_counts)
            WITH ORDINALITY AS u(stream, kind, expected, user_ids, n, i)
    ), c AS (
        SELECT a.*, coalesce(l.version, 0) AS cur_v, l.id AS cur_id, l.txid AS cur_txid
        FROM a
        LEFT JOIN LATERAL (
            SELECT e.version, e.id, e.txid
            FROM {schema}.strata_events e
            WHERE e.stream = a.stream
            ORDER BY e.version DESC
            LIMIT 1
        ) l ON true
    ), s AS (
        SELECT c.*,
            CASE WHEN NOT c.user_ids THEN NULL
                 WHEN c.kind = 2 THEN c.expected
                 WHEN c.cur_id = p_ids[c.off + c.n] THEN c.cur_v - c.n
            END AS start
        FROM c
    ), d AS (
        SELECT s.i, s.off, s.cur_v,
            CASE
                -- (Compared so that a huge expected version cannot overflow.)
                WHEN s.start >= 0 AND s.start <= s.cur_v - s.n
                     AND p_ids[s.off + 1 : s.off + s.n] = (
                        SELECT array_agg(e.id ORDER BY e.version)
                        FROM {schema}.strata_events e
                        WHERE e.stream = s.stream AND e.version > s.start AND e.version <= s.start + s.n)
                    THEN 1
                WHEN (s.kind = 2 AND s.cur_v <> s.expected) OR (s.kind = 1 AND s.cur_v = 0) THEN 2
                -- Positions follow transaction ids: the event before ours
                -- must come from an older transaction (or this one).
                WHEN s.cur_v > 0 AND s.cur_txid > pg_current_xact_id() THEN 3
                ELSE 0
            END AS status,
            s.start, s.n
        FROM s
    )
    SELECT array_agg(d.status ORDER BY d.i),
           array_agg(CASE d.status WHEN 1 THEN d.start + d.n WHEN 0 THEN d.cur_v + d.n ELSE d.cur_v END ORDER BY d.i),
           array_agg(d.off ORDER BY d.i),
           array_agg(d.cur_v ORDER BY d.i)
    INTO statuses, versions, offs, bases
    FROM d;

    IF NOT 0 = ANY (statuses) THEN
        RETURN;
    END IF;
    -- owner[k]: the append event k belongs to.
    owner := ARRAY(
        SELECT x.i
        FROM unnest(p_counts) WITH ORDINALITY AS x(n, i), generate_series(1, x.n)
        ORDER BY x.i);

    -- One plain INSERT for every append that passed, in the arrays' order.
    -- It raises if another transaction took one of the versions or ids
    -- first; then the block's subtransaction takes back what went in, and
    -- the appends run again one by one with ON CONFLICT, below. (A plain
    -- INSERT checks each unique index once, where ON CONFLICT checks it
    -- before and again while inserting; one subtransaction per call is
    -- cheaper than that.)
    BEGIN
        INSERT INTO {schema}.strata_events (stream, version, id, type, schema, data, metadata)
        SELECT x.stream, x.base + (v.k - x.off), v.id, v.type, v.schema, v.data, v.metadata
        FROM unnest(owner, p_ids, p_types, p_schemas, p_data, p_metadata)
            WITH ORDINALITY AS v(a, id, type, schema, data, metadata, k)
        JOIN unnest(p_streams, statuses, bases, offs)
            WITH ORDINALITY AS x(stream, status, base, off, i) ON x.i = v.a
        WHERE x.status = 0
        ORDER BY v.k;
        txid := pg_current_xact_id()::text;
        RETURN;
    EXCEPTION WHEN unique_violation THEN
        -- Nothing of this INSERT is left.
    END;

    -- The rare path: strata_append looks again at each append that passed.
    FOR a IN 1 .. cardinality(p_streams) LOOP
        CONTINUE WHEN statuses[a] <> 0;
        SELECT * INTO r FROM {schema}.strata_append(
            p_streams[a], p_kinds[a], p_expected[a], p_user_ids[a],
            p_ids[offs[a] + 1 : offs[a] + p_counts[a]], p_types[offs[a] + 1 : offs[a] + p_counts[a]],
            p_schemas[offs[a] + 1 : offs[a] + p_counts[a]], p_data[offs[a] + 1 : offs[a] + p_counts[a]],
            p_metadata[offs[a] + 1 : offs[a] + p_counts[a]]);
        statuses[a] := r.status;
        versions[a] := r.version;
    END LOOP;

    IF 0 = ANY (statuses) THEN
        txid := pg_current_xact_id()::text;
    END IF;
END
$fn$;
