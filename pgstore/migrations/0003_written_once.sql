-- 0003: every event row is written once.
-- {schema} is replaced with the quoted schema name before this runs, {seq}
-- with the sequence's qualified name as a string literal.
--
-- Until now an append inserted its rows without a position and a sequencer
-- round then updated every row to give it one: each row was written twice,
-- the update touched every index, and the work queue (the partial index of
-- unpositioned rows) filled with dead entries. Now an append's transaction
-- gets a key (tx, from a sequence) and numbers its rows 1, 2, 3, ... (ord);
-- it writes one strata_pending row (tx, its txid, its row count). A round
-- turns pending rows into strata_tx rows (tx, first and last position):
-- one row per transaction, not per event. An event's position is its
-- transaction's first_position + ord - 1.
--
-- The tx key, not the txid, joins events to positions, because txids
-- restart in a cluster a dump is restored into (see Open and the package
-- doc): a sequence's value is dumped and restored with the data.
--
-- The functions that append and sequence run with plan_cache_mode
-- force_generic_plan: their statements' plans depend on no argument's
-- value, so a plan made once serves every call, where the default planned
-- the decision statement again on every call (half of a lone append's time
-- in the function).
--
-- Nodes of an older build cannot run beside this layout: stop them all
-- before the first node of this build opens the schema (an older build
-- refuses to open it afterwards; one left running fails its statements).

CREATE SEQUENCE {schema}.strata_tx_seq;

-- One row per positioned transaction. Its events hold positions
-- first_position .. last_position, in ord order.
-- Readers find positions by first_position: the ranges tile the log, so
-- the transaction holding position p is the one with the greatest
-- first_position <= p.
CREATE TABLE {schema}.strata_tx (
    tx             bigint PRIMARY KEY,
    first_position bigint NOT NULL UNIQUE,
    last_position  bigint NOT NULL,
    CHECK (last_position >= first_position)
);

-- One row per committed transaction that no round has positioned yet: the
-- sequencer's work queue, written once by the appending transaction and
-- deleted by the round that positions it.
CREATE TABLE {schema}.strata_pending (
    tx   bigint PRIMARY KEY,
    txid xid8   NOT NULL UNIQUE,
    n    int    NOT NULL CHECK (n > 0)
);

-- Which cluster the txids of strata_pending come from (see Open).
ALTER TABLE {schema}.strata_head ADD COLUMN cluster bigint;
UPDATE {schema}.strata_head SET cluster = (SELECT system_identifier FROM pg_control_system());

-- The rows written so far, one line per transaction. A round never split a
-- transaction, so a transaction's rows are all positioned, consecutively,
-- or none is.
CREATE TABLE {schema}.strata_upgrade_0003 AS
SELECT g.txid, g.first, g.last, g.n, g.positioned, nextval({seq}) AS tx
FROM (
    SELECT e.txid, min(e.position) AS first, max(e.position) AS last, count(*) AS n, count(e.position) AS positioned
    FROM {schema}.strata_events e
    GROUP BY e.txid
    ORDER BY min(e.position) NULLS LAST, e.txid
) g;

DO $check$
DECLARE
    bad record;
BEGIN
    SELECT * INTO bad FROM {schema}.strata_upgrade_0003 u
    WHERE u.positioned NOT IN (0, u.n) OR (u.positioned = u.n AND u.last - u.first + 1 <> u.n)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'strata migration 0003: the rows of transaction % are not positioned as one consecutive range (% rows, % positioned, positions % .. %); nothing was changed',
            bad.txid, bad.n, bad.positioned, bad.first, bad.last;
    END IF;
END
$check$;

INSERT INTO {schema}.strata_tx (tx, first_position, last_position)
SELECT u.tx, u.first, u.last FROM {schema}.strata_upgrade_0003 u WHERE u.positioned > 0;

INSERT INTO {schema}.strata_pending (tx, txid, n)
SELECT u.tx, u.txid, u.n FROM {schema}.strata_upgrade_0003 u WHERE u.positioned = 0;

-- The events again, in the new layout (copied rather than updated in
-- place: one write per row, and the indexes built once at the end).
CREATE TABLE {schema}.strata_events_0003 (
    tx       bigint      NOT NULL, -- the writing transaction's key
    ord      int         NOT NULL, -- 1, 2, 3, ... within the transaction
    stream   text        NOT NULL,
    version  bigint      NOT NULL,
    id       uuid        NOT NULL,
    type     text        NOT NULL,
    schema   int         NOT NULL, -- the event's uint32 schema, bit for bit
    data     bytea,
    metadata bytea,
    recorded timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO {schema}.strata_events_0003 (tx, ord, stream, version, id, type, schema, data, metadata, recorded)
SELECT u.tx, row_number() OVER (PARTITION BY e.txid ORDER BY e.seq), e.stream, e.version, e.id, e.type, e.schema, e.data, e.metadata, e.recorded
FROM {schema}.strata_events e
JOIN {schema}.strata_upgrade_0003 u ON u.txid = e.txid
ORDER BY u.tx, e.seq;

DROP FUNCTION {schema}.strata_append_group(text[], int[], bigint[], boolean[], int[], uuid[], text[], int[], bytea[], bytea[]);
DROP FUNCTION {schema}.strata_append(text, int, bigint, boolean, uuid[], text[], int[], bytea[], bytea[]);
DROP FUNCTION {schema}.strata_sequence(int, int, text, int);
DROP TABLE {schema}.strata_events;
DROP TABLE {schema}.strata_upgrade_0003;
ALTER TABLE {schema}.strata_events_0003 RENAME TO strata_events;
ALTER TABLE {schema}.strata_events ADD CONSTRAINT strata_events_pkey PRIMARY KEY (stream, version);
ALTER TABLE {schema}.strata_events ADD CONSTRAINT strata_events_stream_id_key UNIQUE (stream, id);
ALTER TABLE {schema}.strata_events ADD CONSTRAINT strata_events_tx_ord_key UNIQUE (tx, ord);

-- strata_tx_of returns the key of the caller's transaction and how many
-- event rows it has written, creating the key (not yet the pending row) on
-- the transaction's first call.
CREATE FUNCTION {schema}.strata_tx_of(OUT tx bigint, OUT n int, OUT fresh boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT p.tx, p.n INTO tx, n FROM {schema}.strata_pending p WHERE p.txid = pg_current_xact_id();
    fresh := NOT FOUND;
    IF fresh THEN
        tx := nextval({seq});
        n := 0;
    END IF;
END
$fn$;

-- strata_wrote records that the caller's transaction (key p_tx) now has
-- p_n event rows.
CREATE FUNCTION {schema}.strata_wrote(p_tx bigint, p_n int, p_fresh boolean)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF p_fresh THEN
        INSERT INTO {schema}.strata_pending (tx, txid, n) VALUES (p_tx, pg_current_xact_id(), p_n);
    ELSE
        UPDATE {schema}.strata_pending SET n = p_n WHERE tx = p_tx;
    END IF;
END
$fn$;

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
-- tx is the caller's transaction key when status is 0 (else NULL).
--
-- p_kind: 0 any, 1 stream exists, 2 exactly p_expected (0: no stream).
CREATE FUNCTION {schema}.strata_append(
    p_stream text, p_kind int, p_expected bigint, p_user_ids boolean,
    p_ids uuid[], p_types text[], p_schemas int[], p_data bytea[], p_metadata bytea[],
    OUT status int, OUT version bigint, OUT tx bigint)
SET plan_cache_mode = force_generic_plan -- (see the top)
LANGUAGE plpgsql AS $fn$
DECLARE
    n        int := cardinality(p_ids);
    cur_v    bigint;
    cur_id   uuid;
    cur_txid xid8;
    start    bigint;
    inserted bigint;
    lost     boolean := false;
    my       record;
BEGIN
    -- Every statement below must see what committed before it started.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'strata_append needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    FOR attempt IN 1..50 LOOP
        -- Each statement sees what committed before it started (READ
        -- COMMITTED), plus this transaction's own rows. cur_txid is the
        -- last event's transaction while it waits for its position.
        SELECT e.version, e.id, p.txid INTO cur_v, cur_id, cur_txid
        FROM (
            SELECT e.version, e.id, e.tx
            FROM {schema}.strata_events e
            WHERE e.stream = p_stream
            ORDER BY e.version DESC
            LIMIT 1
        ) e
        LEFT JOIN {schema}.strata_pending p ON p.tx = e.tx;
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
        -- positioned before it. (A positioned event is before ours anyway.)
        IF cur_txid > pg_current_xact_id() THEN
            status := 3;
            version := cur_v;
            RETURN;
        END IF;

        SELECT * INTO my FROM {schema}.strata_tx_of();
        INSERT INTO {schema}.strata_events (tx, ord, stream, version, id, type, schema, data, metadata)
        SELECT my.tx, my.n + u.i, p_stream, cur_v + u.i, u.id, u.type, u.schema, u.data, u.metadata
        FROM unnest(p_ids, p_types, p_schemas, p_data, p_metadata)
            WITH ORDINALITY AS u(id, type, schema, data, metadata, i)
        ORDER BY u.i
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted = n THEN
            PERFORM {schema}.strata_wrote(my.tx, my.n + n, my.fresh);
            status := 0;
            version := cur_v + n;
            tx := my.tx;
            RETURN;
        END IF;

        -- Another transaction took one of these versions or ids first.
        -- Take back what went in (all of it is this transaction's, at the
        -- ords after my.n, which the next try numbers again) and look again.
        DELETE FROM {schema}.strata_events e
        WHERE e.tx = my.tx AND e.ord > my.n;
        lost := true;
    END LOOP;
    status := 3;
    version := cur_v;
END
$fn$;

-- strata_append_group runs several appends, each to a different stream, in
-- the caller's transaction, with exactly strata_append's outcomes, but
-- set-based: one statement reads every stream's last event and decides
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
-- in the arrays' order, so their ord, and so their positions, follow it.
--
-- statuses[a] and versions[a] are strata_append's status and version for
-- append a; tx is the caller's transaction key when any append was
-- appended (else NULL).
CREATE FUNCTION {schema}.strata_append_group(
    p_streams text[], p_kinds int[], p_expected bigint[], p_user_ids boolean[], p_counts int[],
    p_ids uuid[], p_types text[], p_schemas int[], p_data bytea[], p_metadata bytea[],
    OUT statuses int[], OUT versions bigint[], OUT tx bigint)
SET plan_cache_mode = force_generic_plan -- (see the top)
LANGUAGE plpgsql AS $fn$
DECLARE
    -- offs[a]: how many events come before append a's in the arrays;
    -- bases[a]: the stream's version before append a; ords[a]: how many
    -- rows the appends that pass write before append a's.
    offs  bigint[];
    bases bigint[];
    ords  bigint[];
    owner bigint[];
    total bigint;
    my    record;
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
    -- transaction still waiting for its position (again), else insert.
    WITH a AS (
        SELECT u.i, u.stream, u.kind, u.expected, u.user_ids, u.n,
               sum(u.n) OVER (ORDER BY u.i) - u.n AS off
        FROM unnest(p_streams, p_kinds, p_expected, p_user_ids, p_counts)
            WITH ORDINALITY AS u(stream, kind, expected, user_ids, n, i)
    ), c AS (
        SELECT a.*, coalesce(l.version, 0) AS cur_v, l.id AS cur_id, p.txid AS cur_txid
        FROM a
        LEFT JOIN LATERAL (
            SELECT e.version, e.id, e.tx
            FROM {schema}.strata_events e
            WHERE e.stream = a.stream
            ORDER BY e.version DESC
            LIMIT 1
        ) l ON true
        LEFT JOIN {schema}.strata_pending p ON p.tx = l.tx
    ), s AS (
        SELECT c.*,
            CASE WHEN NOT c.user_ids THEN NULL
                 WHEN c.kind = 2 THEN c.expected
                 WHEN c.cur_id = p_ids[c.off + c.n] THEN c.cur_v - c.n
            END AS start
        FROM c
    ), d AS MATERIALIZED ( -- (w reads status twice: decide once)
        SELECT s.i, s.off, s.cur_v,
            CASE
                -- (Compared so that a huge expected version cannot
                -- overflow; the inner CASE reads the stream only for a
                -- possible retry, where an AND might read it anyway.)
                WHEN CASE WHEN s.start >= 0 AND s.start <= s.cur_v - s.n
                     THEN p_ids[s.off + 1 : s.off + s.n] = (
                        SELECT array_agg(e.id ORDER BY e.version)
                        FROM {schema}.strata_events e
                        WHERE e.stream = s.stream AND e.version > s.start AND e.version <= s.start + s.n)
                     ELSE false END
                    THEN 1
                WHEN (s.kind = 2 AND s.cur_v <> s.expected) OR (s.kind = 1 AND s.cur_v = 0) THEN 2
                -- Positions follow transaction ids: the event before ours
                -- must come from an older transaction (or this one), unless
                -- it is positioned already.
                WHEN s.cur_txid > pg_current_xact_id() THEN 3
                ELSE 0
            END AS status,
            s.start, s.n
        FROM s
    ), w AS (
        SELECT d.*, sum(CASE d.status WHEN 0 THEN d.n ELSE 0 END) OVER (ORDER BY d.i) AS upto
        FROM d
    )
    SELECT array_agg(w.status ORDER BY w.i),
           array_agg(CASE w.status WHEN 1 THEN w.start + w.n WHEN 0 THEN w.cur_v + w.n ELSE w.cur_v END ORDER BY w.i),
           array_agg(w.off ORDER BY w.i),
           array_agg(w.cur_v ORDER BY w.i),
           array_agg(w.upto - CASE w.status WHEN 0 THEN w.n ELSE 0 END ORDER BY w.i),
           max(w.upto)
    INTO statuses, versions, offs, bases, ords, total
    FROM w;

    IF NOT 0 = ANY (statuses) THEN
        RETURN;
    END IF;
    -- owner[k]: the append event k belongs to.
    owner := ARRAY(
        SELECT x.i
        FROM unnest(p_counts) WITH ORDINALITY AS x(n, i), generate_series(1, x.n)
        ORDER BY x.i);
    SELECT * INTO my FROM {schema}.strata_tx_of();

    -- One plain INSERT for every append that passed, in the arrays' order.
    -- It raises if another transaction took one of the versions or ids
    -- first; then the block's subtransaction takes back what went in, and
    -- the appends run again one by one with ON CONFLICT, below. (A plain
    -- INSERT checks each unique index once, where ON CONFLICT checks it
    -- before and again while inserting; one subtransaction per call is
    -- cheaper than that.)
    BEGIN
        INSERT INTO {schema}.strata_events (tx, ord, stream, version, id, type, schema, data, metadata)
        SELECT my.tx, my.n + x.ord + (v.k - x.off), x.stream, x.base + (v.k - x.off), v.id, v.type, v.schema, v.data, v.metadata
        FROM unnest(owner, p_ids, p_types, p_schemas, p_data, p_metadata)
            WITH ORDINALITY AS v(a, id, type, schema, data, metadata, k)
        JOIN unnest(p_streams, statuses, bases, offs, ords)
            WITH ORDINALITY AS x(stream, status, base, off, ord, i) ON x.i = v.a
        WHERE x.status = 0
        ORDER BY v.k;
        PERFORM {schema}.strata_wrote(my.tx, (my.n + total)::int, my.fresh);
        tx := my.tx;
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
        IF r.status = 0 THEN
            tx := r.tx;
        END IF;
    END LOOP;
END
$fn$;

-- strata_sequence runs one sequencer round: it positions the transactions
-- that can no longer be followed by an older one, in txid order, advances
-- the head, and notifies p_channel. Rounds are serialised by an advisory
-- lock, so positions are dense and every round continues where the last
-- one stopped. A round takes transactions until p_limit rows (at least
-- one transaction). It returns, per transaction it positioned, its key,
-- first position and number of rows.
CREATE FUNCTION {schema}.strata_sequence(p_lock_class int, p_lock_key int, p_channel text, p_limit int)
RETURNS TABLE (tx bigint, first_position bigint, events bigint)
SET plan_cache_mode = force_generic_plan -- (see the top)
LANGUAGE plpgsql AS $fn$
DECLARE
    txs   bigint[];
    ns    bigint[];
    head  bigint;
    total bigint;
BEGIN
    -- The head and the queue must be read after the lock, in new snapshots.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'strata_sequence needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);

    -- Every transaction below the snapshot's xmin has ended: its pending
    -- row is visible if it committed, and no transaction can still commit
    -- one with a smaller txid. (One statement: the xmin and the rows come
    -- from one snapshot.)
    SELECT array_agg(q.tx ORDER BY q.txid), array_agg(q.n ORDER BY q.txid)
    INTO txs, ns
    FROM (
        SELECT p.tx, p.txid, p.n, sum(p.n) OVER (ORDER BY p.txid) AS upto
        FROM {schema}.strata_pending p
        WHERE p.txid < pg_snapshot_xmin(pg_current_snapshot())
    ) q
    WHERE q.upto - q.n < p_limit;
    IF txs IS NULL THEN
        RETURN;
    END IF;

    SELECT h.position INTO head FROM {schema}.strata_head h WHERE h.id = 1 FOR UPDATE;

    -- The round's commit need not wait for its WAL flush. Positions are a
    -- function of the committed rows alone — the txid order of the ended
    -- transactions' pending rows — so if a crash loses this round, the next
    -- one assigns the very same positions to the very same transactions (no
    -- transaction can appear below this round's xmin, and txids are never
    -- reused). And any later durable commit flushes this round's WAL too.
    PERFORM set_config('synchronous_commit', 'off', true);

    RETURN QUERY
    WITH c AS (
        SELECT u.tx, u.n, head + sum(u.n) OVER (ORDER BY u.i) AS last
        FROM unnest(txs, ns) WITH ORDINALITY AS u(tx, n, i)
    ), ins AS (
        INSERT INTO {schema}.strata_tx (tx, first_position, last_position)
        SELECT c.tx, c.last - c.n + 1, c.last FROM c
        RETURNING strata_tx.tx, strata_tx.first_position, strata_tx.last_position
    )
    SELECT ins.tx, ins.first_position, ins.last_position - ins.first_position + 1
    FROM ins
    ORDER BY ins.first_position;

    DELETE FROM {schema}.strata_pending p WHERE p.tx = ANY (txs);
    SELECT sum(x) INTO total FROM unnest(ns) x;
    UPDATE {schema}.strata_head SET position = head + total WHERE id = 1;
    PERFORM pg_notify(p_channel, (head + total)::text);
END
$fn$;

-- strata_adopt positions, in one go, every pending transaction whose txid
-- comes from another cluster: after a dump is restored into a new cluster
-- (or a major-version upgrade), txids there count from elsewhere, so the
-- rule "below xmin" means nothing for the restored pending rows. Every one
-- of them is a committed transaction of the old cluster, which is gone,
-- so all of them can be positioned now, in their old txid order. Open
-- calls it under the migration lock, before the store appends; it returns
-- how many transactions it positioned.
CREATE FUNCTION {schema}.strata_adopt(p_lock_class int, p_lock_key int, p_channel text)
RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    here  bigint := (SELECT system_identifier FROM pg_control_system());
    was   bigint;
    head  bigint;
    moved bigint;
BEGIN
    -- No round runs meanwhile.
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);
    SELECT h.cluster, h.position INTO was, head FROM {schema}.strata_head h WHERE h.id = 1 FOR UPDATE;
    IF was = here THEN
        RETURN 0;
    END IF;
    IF was IS NULL THEN
        -- Not known (set by hand?): the rows are this cluster's, and
        -- rounds position them as usual.
        UPDATE {schema}.strata_head SET cluster = here WHERE id = 1;
        RETURN 0;
    END IF;
    WITH q AS (
        SELECT p.tx, p.n, head + sum(p.n) OVER (ORDER BY p.txid) AS last
        FROM {schema}.strata_pending p
    ), ins AS (
        INSERT INTO {schema}.strata_tx (tx, first_position, last_position)
        SELECT q.tx, q.last - q.n + 1, q.last FROM q
        RETURNING strata_tx.tx, strata_tx.last_position
    ), del AS (
        DELETE FROM {schema}.strata_pending p WHERE p.tx IN (SELECT ins.tx FROM ins)
    )
    SELECT count(*), coalesce(max(ins.last_position), head) INTO moved, head FROM ins;
    UPDATE {schema}.strata_head SET position = head, cluster = here WHERE id = 1;
    IF moved > 0 THEN
        PERFORM pg_notify(p_channel, head::text);
    END IF;
    RETURN moved;
END
$fn$;
