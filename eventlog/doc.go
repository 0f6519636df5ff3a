// Package eventlog is Strata's embedded event store: a segmented,
// append-only log of CRC-framed records with a derived stream index in
// Pebble. It implements store.Store.
//
// # Files
//
// A log directory holds:
//
//	LOCK                        flock'd while a process has the log open
//	00000000000000000001.seg    segments, named by the position of their first record
//	00000000000001048577.seg
//	index/                      Pebble: the stream index (derived, rebuildable)
//
// # Segment format
//
// A segment is a 32-byte header followed by records, back to back. Integers
// are little-endian unless noted.
//
//	segment header (32 bytes)
//	+----------+---------------+-----------------+----------+---------+
//	| magic 8  | base pos u64  | created ns i64  | rsvd u32 | crc u32 |
//	+----------+---------------+-----------------+----------+---------+
//	magic = "STRSEG01"; crc = crc32c of the first 28 bytes
//
//	record frame
//	+------------+-----------+--------------------------------------+
//	| length u32 | crc32c u32| body (length bytes)                  |
//	+------------+-----------+--------------------------------------+
//	crc32c (Castagnoli) covers the body
//
//	body: fixed part (52 bytes), then variable part
//	+---------+---------+--------+-------+---------+-------+--------+--------+------+----------+
//	| pos u64 | ver u64 | ns i64 | id 16 | schema  | flags | strlen | typlen | rsvd | metalen  |
//	|         |         |        |       | u32     | u8    | u8     | u8     | u8   | u32      |
//	+---------+---------+--------+-------+---------+-------+--------+--------+------+----------+
//	| stream (strlen) | type (typlen) | metadata (metalen) | data (the rest)                  |
//	+-----------------+---------------+--------------------+----------------------------------+
//
// pos is the dense global position, ver the version within the stream, ns
// the record time in Unix nanoseconds. flags bit 0 (flagCommit) marks the last
// record of one Append call: the events of an append are visible only as a
// whole, and recovery drops a trailing run of records without it.
//
// # Invariants
//
//  1. Positions are dense and increase by one from record to record, across
//     segments. A segment's name is the position of its first record.
//  2. One goroutine (the writer) assigns positions and versions and writes;
//     appends are checked against the writer's view of stream heads, which
//     includes written but not yet durable appends.
//  3. Nothing is visible to readers, subscribers or the index, and no append
//     is acknowledged, before it is durable in the chosen mode (fsynced in
//     SyncAlways). The writer may write batch N+1 while batch N is being
//     fsynced; publication and acknowledgements follow position order.
//  4. After a write or fsync error the log is broken: every later append
//     fails with that error (sticky). An append that failed this way has an
//     unknown outcome; retrying it with the same event ids is safe once the
//     log is reopened.
//  5. The stream index is a function of a prefix of the log. It records the
//     last position it covers and is brought up to date at open; it never
//     needs its own fsync (its Pebble WAL is off). Records not yet indexed are
//     answered from an in-memory tail index filled before publication.
//
// # Recovery
//
// Open scans the last segment (and any part of the log the index does not
// cover; every segment with VerifyAll), checking CRCs and position order. A
// bad frame with no valid frame after it is a torn write: the segment is
// truncated to the end of the last complete append. A bad frame followed by
// valid data is corruption: Open fails with a *CorruptionError naming the
// segment and offset, and changes nothing. So is damage to a record the
// index recorded as fsynced (its meta keeps the last such position): that
// record was acknowledged as durable, so it cannot be a torn write. A
// zero-filled tail (preallocation, below) is not damage.
//
// # Preallocation
//
// A new segment is fallocated to its full size, and in SyncAlways mode a
// preallocator goroutine writes zeros ahead of the writer and fsyncs them,
// so that a group-commit fsync flushes data without journaling block
// allocation (see prealloc.go for when that pays). Sealing a segment, and
// closing the log, cut the zeros off.
package eventlog
