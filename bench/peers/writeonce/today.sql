-- One group of 32 events and a sequencer round, today's layout.
\set s random(1, 1000000000)
BEGIN;
INSERT INTO wo.a (stream, version, id, type, data)
SELECT 's' || :s || '-' || g, 1, gen_random_uuid(), 't', '\x7b226163636f756e74223a226163637430303034322c22616d6f756e74223a223132352e3430227d'::bytea FROM generate_series(1, 32) g;
COMMIT;
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT pg_advisory_xact_lock(1);
WITH c AS (SELECT e.txid, e.seq, (SELECT position FROM wo.ahead WHERE id = 1) + row_number() OVER (ORDER BY e.txid, e.seq) AS pos
  FROM wo.a e WHERE e.position IS NULL AND e.txid < pg_snapshot_xmin(pg_current_snapshot())),
u AS (UPDATE wo.a e SET position = c.pos FROM c WHERE e.position IS NULL AND e.txid = c.txid AND e.seq = c.seq RETURNING e.position)
UPDATE wo.ahead SET position = position + (SELECT count(*) FROM u) WHERE id = 1;
COMMIT;
