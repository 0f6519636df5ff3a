-- One group of 32 events and a sequencer round, rows written once.
\set s random(1, 1000000000)
BEGIN;
INSERT INTO wo.b (ord, stream, version, id, type, data)
SELECT g, 's' || :s || '-' || g, 1, gen_random_uuid(), 't', '\x7b226163636f756e74223a226163637430303034322c22616d6f756e74223a223132352e3430227d'::bytea FROM generate_series(1, 32) g;
INSERT INTO wo.bpending (txid, n) VALUES (pg_current_xact_id(), 32);
COMMIT;
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT pg_advisory_xact_lock(2);
WITH p AS (SELECT txid, n FROM wo.bpending WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid),
h AS (SELECT position FROM wo.bhead WHERE id = 1),
c AS (SELECT p.txid, p.n, (SELECT position FROM h) + sum(p.n) OVER (ORDER BY p.txid) - p.n + 1 AS first FROM p),
i AS (INSERT INTO wo.btx (txid, first_position, n) SELECT txid, first, n FROM c RETURNING n),
d AS (DELETE FROM wo.bpending WHERE txid IN (SELECT txid FROM c))
UPDATE wo.bhead SET position = position + coalesce((SELECT sum(n) FROM i), 0) WHERE id = 1;
COMMIT;
