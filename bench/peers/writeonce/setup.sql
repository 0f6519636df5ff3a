-- The write-once experiment (docs/benchmarks.md): two event tables, the
-- layout pgstore uses today (rows inserted, then positioned by an UPDATE)
-- and one whose rows are written once (a round writes one row per
-- transaction). Scratch schema "wo".
DROP SCHEMA IF EXISTS wo CASCADE;
CREATE SCHEMA wo;
-- today's layout
CREATE TABLE wo.a (seq bigserial, txid xid8 NOT NULL DEFAULT pg_current_xact_id(), position bigint UNIQUE,
  stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL, type text NOT NULL, data bytea,
  PRIMARY KEY (stream, version), UNIQUE (stream, id));
CREATE INDEX a_unpos ON wo.a (txid, seq) WHERE position IS NULL;
CREATE TABLE wo.ahead (id int PRIMARY KEY, position bigint NOT NULL); INSERT INTO wo.ahead VALUES (1, 0);
-- written once
CREATE TABLE wo.b (txid xid8 NOT NULL DEFAULT pg_current_xact_id(), ord int NOT NULL,
  stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL, type text NOT NULL, data bytea,
  PRIMARY KEY (stream, version), UNIQUE (stream, id));
CREATE INDEX b_tx ON wo.b (txid, ord);
CREATE TABLE wo.btx (txid xid8 PRIMARY KEY, first_position bigint UNIQUE, n int NOT NULL);
CREATE TABLE wo.bpending (txid xid8 PRIMARY KEY, n int NOT NULL);
CREATE TABLE wo.bhead (id int PRIMARY KEY, position bigint NOT NULL); INSERT INTO wo.bhead VALUES (1, 0);
