// Package pgstore is Strata's PostgreSQL event store (pgx v5). It implements
// store.Store, so several Strata processes can share one log.
//
// # Tables
//
// Open applies the embedded migrations (migrations/*.sql) to a schema
// (Options.Schema, default public) in one transaction that holds an advisory
// lock for that schema, recording each version in strata_migrations; two
// processes opening an empty schema at once are serialised and the second
// finds the work done. The schema holds:
//
//	strata_events  one row per event, written once: tx (its transaction's
//	               key), ord (1, 2, 3, ... within the transaction), stream,
//	               version, id, type, schema, data, metadata, recorded
//	               (clock_timestamp()). PRIMARY KEY (stream, version),
//	               UNIQUE (stream, id), UNIQUE (tx, ord).
//	strata_pending one row per committed transaction not yet positioned:
//	               tx, txid (pg_current_xact_id()), n (its rows). The
//	               sequencer's work queue.
//	strata_tx      one row per positioned transaction: tx, first_position,
//	               last_position (UNIQUE first_position).
//	strata_head    one row: the last position handed out, and the cluster
//	               (system identifier) the pending txids belong to.
//	strata_tx_seq  the transaction keys.
//	strata_append  the append of one batch to one stream (see below).
//	strata_append_group the appends of a group commit, set-based (see
//	               below); strata_append is its slow path.
//	strata_sequence one sequencer round (see below).
//	strata_adopt   positions a restored dump's pending transactions.
//
// An event's position is its transaction's first_position + ord - 1.
//
// # Why positions are not a sequence
//
// A global position must be dense and, above all, never skip an event a
// reader has not seen yet. A sequence (or bigserial) hands out values when a
// row is inserted, but the row becomes visible when its transaction commits,
// and transactions commit in any order: a reader that has seen position 11
// and asks for "position > 11" never learns about position 10 if 10's
// transaction committed a moment later. Taking a global lock around every
// append would fix that, at the price of all throughput.
//
// Instead an append's transaction writes its event rows without positions
// — each row once, numbered by ord — and one strata_pending row saying how
// many it wrote. Positions are given afterwards by sequencer rounds. A
// round, in one transaction holding an advisory lock (so rounds are
// serialised and each continues where the last stopped), takes the pending
// rows whose txid is below the xmin of its snapshot —
// pg_snapshot_xmin(pg_current_snapshot()), the oldest transaction still
// running anywhere in the cluster — in txid order, gives each transaction
// the next n positions (one strata_tx row), deletes its pending row, moves
// strata_head and NOTIFYs. Every transaction below xmin has ended: its
// pending row is final and visible to the round if it committed, and no
// transaction still running can commit one with a smaller txid later,
// because txids are handed out in increasing order. So a round never passes
// over something that could still appear: positions are dense, and a
// reader that follows "position > last" in position order misses nothing.
// A transaction gets all its positions at once, so an append becomes
// visible whole. A round takes transactions until roundLimit rows (at
// least one transaction, however large).
//
// The round writes one row per transaction, not per event: until migration
// 0003 each event row was inserted without a position and then updated by
// the round, a second write of every row that touched every index and left
// dead entries in the work queue (see docs/benchmarks.md for what the
// change gained).
//
// A consequence worth having: a transaction's positions are a function of
// the committed data alone — its rank in txid order among the ended
// transactions — not of when rounds ran or which process ran them. So a
// round commits without waiting for its WAL flush (synchronous_commit off,
// for that transaction only): if a crash loses a round, the next one
// assigns the very same positions to the very same transactions, and any
// later durable commit flushes the round's WAL anyway. The appends
// themselves commit durably.
//
// Reads only see positioned rows (joined to strata_tx): ReadAll and
// Subscribe by position (with the head read in the same snapshot, so every
// position up to it is there), ReadStream by (stream, version). Head is
// strata_head. Record.Time is the recorded column. The read statements are
// written so that their plans look rows up by index whatever the tables'
// statistics, because on a server with autovacuum off a table is never
// analyzed, and a prepared statement keeps the plan it got on a young
// table.
//
// Positions follow txids, not commit order, so one more rule keeps a
// stream's versions in position order: an append's transaction must not be
// older than the transaction that wrote the stream's previous event, while
// that event waits for its position (once positioned, it is before
// anything still to come). strata_append (and strata_append_group) checks
// it (the previous row's pending txid against pg_current_xact_id()); when
// it fails — possible only when another process committed to the stream
// after this transaction began — the append is carried into the writer's
// next transaction, whose txid is newer.
//
// # Appends
//
// Input is validated exactly as by the embedded log before anything reaches
// the database. Concurrent Append calls on one Store are gathered by two
// committer goroutines into transactions (group commit): one pipeline
// holding BEGIN, one strata_append_group call for the group, COMMIT, and
// one sequencer round — one round trip, one commit and one round for the
// whole group. A lone Append pays the same single round trip. While one
// group is in flight, the other committer sends the next once it is as
// large (see runWriter): the commits overlap without cutting groups small.
// The appends of one call go to distinct streams: the first append to each
// stream goes in the first call, a second append to a stream in a second
// call of the same transaction (which sees the first's rows), and so on;
// within a call the appends are sorted by stream, so that concurrent groups
// (of this process or others) take their row locks in one order. The
// group's own round normally positions its rows: it reports the group's
// transaction with its first position, and the appends' positions follow
// in the calls' order.
//
// Expected versions and idempotency are enforced by the table's constraints,
// never by a read followed by a racing write: strata_append reads the
// stream's last row, recognises a retry (the same ids at the place the
// append names), checks the expected version, and inserts with ON CONFLICT
// DO NOTHING; when another transaction took one of the versions first it
// removes its own rows and looks again (Any and StreamExists append after
// the new last event; an exact expectation fails with the actual version).
// It never raises for an expected outcome, so one append's conflict leaves
// the rest of its group standing without a savepoint per append, and
// without the subtransactions a savepoint costs. strata_append_group does
// the same for many streams at once, set-based: one statement reads every
// stream's last row and decides every append (retry, wrong version, again,
// or insert), one plain INSERT writes every append that passed. That INSERT
// runs in a PL/pgSQL exception block — one subtransaction per call, not per
// append — and if another transaction took one of its versions or ids
// first, the block takes the whole INSERT back and the call runs its
// passing appends through strata_append one by one, so the outcomes are
// exactly strata_append's. An error the server does raise makes the writer
// run that group's appends one by one, so that only the faulty one fails; a
// deadlock against another process's writer makes it run the group again.
//
// An append is acknowledged only once its rows are positioned, normally by
// its group's own round. A failed expected-version check is reported only
// once the version that beat it is positioned, so the caller can read it at
// once. Event ids must be unique within a stream (UNIQUE (stream, id)): an
// append of an id the stream already holds elsewhere fails with an error
// matching event.ErrInvalid, unless it is a retry.
//
// # Waiting for older transactions
//
// If any transaction with a smaller txid is still open when a group commits
// — the other committer's group, another process's append, but also any
// transaction that has written anything in any database of the cluster —
// the group's rows wait: its
// appends are handed to the acker goroutine, which delivers them when a
// round of this process reports their transaction (often the other
// committer's), and otherwise looks their positions up when a NOTIFY
// arrives (a dedicated connection LISTENs on the schema's
// channel: some round positioned rows) and polls with backoff, running a
// round itself when it polls, and acknowledges them when they are
// positioned.
// Subscribers likewise see nothing newer until then. A long-open
// transaction therefore stalls the log's progress — appenders and
// subscribers wait, nothing is lost or reordered — until it ends; keep
// write transactions on the cluster short, and do not leave a prepared
// transaction (PREPARE TRANSACTION) unresolved. Read-only transactions take
// no txid and hold nothing back. A stall does not go unnoticed: once
// committed events have waited StallAfter (2 s), every Store names the
// oldest open transaction of the cluster — the session's pid, user,
// application, client, database, state, age and query, or the prepared
// transaction's gid — in a warning (repeated every 30 s while it lasts, and
// an all-clear when it ends) and in Stall, which strata serve exports as
// the strata_log_stalled_seconds and strata_log_stalled_events gauges.
// Every idle Store also runs a round each
// PollInterval, so rows committed by a process that died before its own
// round are positioned all the same. NOTIFY only wakes; the tables are the
// truth.
//
// # Backup and restore
//
// Positions live in strata_tx and versions and record times in
// strata_events, and the transaction keys come from a sequence, so a dump
// and restore (pg_dump, or a physical copy) preserves them exactly:
// readers' checkpoints stay valid. Only the pending transactions — committed
// but not yet positioned when the dump was taken — carry txids, and txids
// restart in another cluster. strata_head records the cluster's system
// identifier; when Open finds a different one (a dump restored into
// another cluster, or a major-version upgrade), it positions every pending
// transaction at once, in their old txid order, before anything else
// appends: each of them committed in a cluster that is gone. It logs a
// warning saying how many. A restore into the same cluster needs nothing:
// its txids are still below the cluster's.
//
// Migration 0003 rewrites the event table into this layout (and refuses,
// changing nothing, if it finds a transaction whose rows were positioned
// apart): on a large log it takes about as long as copying the table and
// building its three indexes, and the log is locked meanwhile. Stop every node of an older build before the first node of
// this one opens the schema: an older build refuses to open it
// afterwards, and one left running fails its statements.
package pgstore
