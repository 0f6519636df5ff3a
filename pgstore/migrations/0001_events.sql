-- 0001: the event table, the head, and the two functions every node calls.
-- {schema} is replaced with the quoted schema name before this runs.

CREATE TABLE {schema}.strata_events (
    -- seq orders rows within a transaction; position orders the log.
    seq      bigserial,
    txid     xid8        NOT NULL DEFAULT pg_current_xact_id(),
    position bigint      UNIQUE, -- NULL until a sequencer round assigns it
    stream   text        NOT NULL,
    version  bigint      NOT NULL,
    id       uuid        NOT NULL,
    type     text        NOT NULL,
    schema   int         NOT NULL, -- the event's uint32 schema, bit for bit
    data     bytea,
    metadata bytea,
    recorded timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (stream, version),
    UNIQUE (stream, id)
);

-- The sequencer's work queue: rows not yet positioned, in the order they
-- will be positioned. Positioned rows leave the index.
CREATE INDEX strata_events_unpositioned ON {schema}.strata_events (txid, seq) WHERE position IS NULL;

CREATE TABLE {schema}.strata_head (
    id       int    PRIMARY KEY CHECK (id = 1),
    position bigint NOT NULL
);
INSERT INTO {schema}.strata_head (id, position) VALUES (1, 0);

-- strata_append appends one batch of events to one stream, in the caller's
-- transaction, and never raises for an expected outcome, so that one
-- append's failure leaves the others of its group commit standing. It
-- returns status:
--   0 appended: version is the stream's new version
--   1 retry: these ids already sit at the place the append names; version
--     is the version of the last of them, nothing was written
--   2 wrong expected version: version is the stream's actual version
--   3 again: the stream's last event was written by a transaction newer than
--     this one (or the stream is too contended); append in a new transaction
--   4 duplicate id: an id is already in the stream elsewhere; version is
--     where
-- txid is the caller's transaction id when status is 0 (else NULL).
--
-- p_kind: 0 any, 1 stream exists, 2 exactly p_expected (0: no stream).
CREATE FUNCTION {schema}.strata_append(
    p_stream text, p_kind int, p_expected bigint, p_user_ids boolean,
    p_ids uuid[], p_types text[], p_schemas int[], p_data bytea[], p_metadata bytea[],
    OUT status int, OUT version bigint, OUT txid text)
LANGUAGE plpgsql AS $fn$
DECLARE
    n        int := cardinality(p_ids);
    cur_v    bigint;
    cur_id   uuid;
    cur_txid xid8;
    start    bigint;
    inserted bigint;
    lost     boolean := false;
BEGIN
    -- Every statement below must see what committed before it started.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'strata_append needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    FOR attempt IN 1..50 LOOP
        -- Each statement sees what committed before it started (READ
        -- COMMITTED), plus this transaction's own rows.
        SELECT e.version, e.id, e.txid INTO cur_v, cur_id, cur_txid
        FROM {schema}.strata_events e
        WHERE e.stream = p_stream
        ORDER BY e.version DESC
        LIMIT 1;
        cur_v := coalesce(cur_v, 0);

        -- A retry: the same ids, in order, at the place the append names.
        IF p_user_ids THEN
            start := NULL;
            IF p_kind = 2 THEN
                start := p_expected;
            ELSIF cur_id = p_ids[n] THEN
                start := cur_v - n;
            END IF;
            -- (Compared so that a huge p_expected cannot overflow.)
            IF start >= 0 AND start <= cur_v - n THEN
                IF p_ids = (
                    SELECT array_agg(e.id ORDER BY e.version)
                    FROM {schema}.strata_events e
                    WHERE e.stream = p_stream AND e.version > start AND e.version <= start + n)
                THEN
                    status := 1;
                    version := start + n;
                    RETURN;
                END IF;
            END IF;
        END IF;

        IF (p_kind = 2 AND cur_v <> p_expected) OR (p_kind = 1 AND cur_v = 0) THEN
            status := 2;
            version := cur_v;
            RETURN;
        END IF;

        IF lost THEN
            -- The last insert lost a race; if an id is what collided, say so.
            SELECT e.version INTO version
            FROM {schema}.strata_events e
            WHERE e.stream = p_stream AND e.id = ANY (p_ids)
            LIMIT 1;
            IF FOUND THEN
                status := 4;
                RETURN;
            END IF;
        END IF;

        -- Positions follow transaction ids: the event before ours must come
        -- from an older transaction (or this one), or ours would be
        -- positioned before it.
        IF cur_v > 0 AND cur_txid > pg_current_xact_id() THEN
            status := 3;
            version := cur_v;
            RETURN;
        END IF;

        INSERT INTO {schema}.strata_events (stream, version, id, type, schema, data, metadata)
        SELECT p_stream, cur_v + u.i, u.id, u.type, u.schema, u.data, u.metadata
        FROM unnest(p_ids, p_types, p_schemas, p_data, p_metadata)
            WITH ORDINALITY AS u(id, type, schema, data, metadata, i)
        ORDER BY u.i
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted = n THEN
            status := 0;
            version := cur_v + n;
            txid := pg_current_xact_id()::text;
            RETURN;
        END IF;

        -- Another transaction took one of these versions or ids first.
        -- Take back what went in (all of it is this transaction's) and look
        -- again.
        DELETE FROM {schema}.strata_events e
        WHERE e.stream = p_stream AND e.version > cur_v AND e.version <= cur_v + n
          AND e.txid = pg_current_xact_id();
        lost := true;
    END LOOP;
    status := 3;
    version := cur_v;
END
$fn$;

-- strata_sequence runs one sequencer round: it gives the next positions to
-- the rows of transactions that can no longer be followed by an older one,
-- in (txid, seq) order, advances the head, and notifies p_channel. Rounds
-- are serialised by an advisory lock, so positions are dense and every
-- round continues where the last one stopped. It returns, per transaction
-- it positioned, the first position and the number of rows.
CREATE FUNCTION {schema}.strata_sequence(p_lock_class int, p_lock_key int, p_channel text, p_limit int)
RETURNS TABLE (txid text, first_position bigint, events bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    n     bigint;
    lo    xid8;
    hi    xid8;
    whole boolean;
    head  bigint;
    total bigint := 0;
    r     record;
BEGIN
    -- The head and the rows must be read after the lock, in new snapshots.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'strata_sequence needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);

    -- Every transaction below the snapshot's xmin has ended: its rows are
    -- final and visible, and no transaction can still commit rows with a
    -- smaller txid.
    SELECT count(*), min(c.txid), max(c.txid) INTO n, lo, hi
    FROM (
        SELECT e.txid
        FROM {schema}.strata_events e
        WHERE e.position IS NULL AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.txid, e.seq
        LIMIT p_limit
    ) c;
    IF n = 0 THEN
        RETURN;
    END IF;
    -- A round never splits a transaction: when the limit cut the last one,
    -- it waits for the next round, unless it is the only one.
    whole := n < p_limit OR lo = hi;

    SELECT h.position INTO head FROM {schema}.strata_head h WHERE h.id = 1 FOR UPDATE;

    -- The round's commit need not wait for its WAL flush. Positions are a
    -- function of the committed rows alone — the (txid, seq) order of the
    -- rows of ended transactions — so if a crash loses this round, the next
    -- one assigns the very same positions to the very same rows (no
    -- transaction can appear below this round's xmin, and txids are never
    -- reused). And any later durable commit flushes this round's WAL too.
    PERFORM set_config('synchronous_commit', 'off', true);

    FOR r IN
        WITH c AS (
            SELECT e.txid, e.seq, head + row_number() OVER (ORDER BY e.txid, e.seq) AS pos
            FROM {schema}.strata_events e
            WHERE e.position IS NULL AND (e.txid < hi OR (whole AND e.txid = hi))
        ), u AS (
            UPDATE {schema}.strata_events e
            SET position = c.pos
            FROM c
            WHERE e.position IS NULL AND e.txid = c.txid AND e.seq = c.seq
            RETURNING e.txid, e.position
        )
        SELECT u.txid, min(u.position) AS first, count(*) AS cnt
        FROM u
        GROUP BY u.txid
        ORDER BY 2
    LOOP
        txid := r.txid::text;
        first_position := r.first;
        events := r.cnt;
        total := total + r.cnt;
        RETURN NEXT;
    END LOOP;

    UPDATE {schema}.strata_head SET position = head + total WHERE id = 1;
    PERFORM pg_notify(p_channel, (head + total)::text);
END
$fn$;
