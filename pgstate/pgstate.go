// Package pgstate keeps what a Strata node derives for itself — aggregate
// snapshots and the fraud rules' checkpoint — in PostgreSQL instead of its
// data directory, so that nodes sharing one database keep no state of their
// own that matters. Everything here is a shortcut to replaying the log:
// losing it costs time, never correctness.
package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/aggregate"
)

// Store holds snapshots and checkpoints in one schema.
type Store struct {
	pool *pgxpool.Pool
	q    queries
}

type queries struct {
	ddl, loadSnap, saveSnap, loadCk, saveCk string
}

// setupLockKey serialises table creation by nodes starting together.
const setupLockKey = 0x53545212 // "STR\x12"

// Open prepares a Store in schema ("" is public), creating its tables if
// needed.
func Open(ctx context.Context, pool *pgxpool.Pool, schema string) (*Store, error) {
	if schema == "" {
		schema = "public"
	}
	sc := pgx.Identifier{schema}.Sanitize()
	s := &Store{pool: pool, q: queries{
		ddl: `CREATE SCHEMA IF NOT EXISTS ` + sc + `;
CREATE TABLE IF NOT EXISTS ` + sc + `.strata_snapshots (
	stream      text PRIMARY KEY,
	version     bigint NOT NULL,
	position    bigint NOT NULL,
	taken       timestamptz NOT NULL,
	fingerprint text NOT NULL,
	state       bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS ` + sc + `.strata_node_checkpoints (
	name     text PRIMARY KEY,
	data     bytea NOT NULL,
	saved_at timestamptz NOT NULL DEFAULT clock_timestamp()
);`,
		loadSnap: `SELECT version, position, taken, fingerprint, state FROM ` + sc + `.strata_snapshots WHERE stream = $1`,
		// A snapshot never goes back to an older version: two nodes may
		// save one stream's snapshots in either order.
		saveSnap: `INSERT INTO ` + sc + `.strata_snapshots (stream, version, position, taken, fingerprint, state) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (stream) DO UPDATE SET version = excluded.version, position = excluded.position, taken = excluded.taken,
	fingerprint = excluded.fingerprint, state = excluded.state
WHERE excluded.version >= ` + sc + `.strata_snapshots.version OR excluded.fingerprint <> ` + sc + `.strata_snapshots.fingerprint`,
		loadCk: `SELECT data FROM ` + sc + `.strata_node_checkpoints WHERE name = $1`,
		saveCk: `INSERT INTO ` + sc + `.strata_node_checkpoints (name, data) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET data = excluded.data, saved_at = clock_timestamp()`,
	}}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, setupLockKey); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, s.q.ddl)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstate: setup: %w", err)
	}
	return s, nil
}

// LoadSnapshot implements aggregate.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (aggregate.Snapshot, bool, error) {
	snap := aggregate.Snapshot{Stream: stream}
	var version, position int64
	var state []byte
	err := s.pool.QueryRow(ctx, s.q.loadSnap, stream).Scan(&version, &position, &snap.Time, &snap.Fingerprint, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return aggregate.Snapshot{}, false, nil
	}
	if err != nil {
		return aggregate.Snapshot{}, false, fmt.Errorf("pgstate: load snapshot of %q: %w", stream, err)
	}
	snap.Version, snap.Position, snap.State = uint64(version), uint64(position), state
	return snap, true, nil
}

// SaveSnapshot implements aggregate.SnapshotStore. An older snapshot than
// the one stored (by the same code) is dropped.
func (s *Store) SaveSnapshot(ctx context.Context, snap aggregate.Snapshot) error {
	if snap.Version > 1<<63-1 || snap.Position > 1<<63-1 {
		return fmt.Errorf("pgstate: snapshot of %q: version or position out of range", snap.Stream)
	}
	taken := snap.Time
	if taken.IsZero() {
		taken = time.Now()
	}
	if _, err := s.pool.Exec(ctx, s.q.saveSnap, snap.Stream, int64(snap.Version), int64(snap.Position), taken, snap.Fingerprint, []byte(snap.State)); err != nil {
		return fmt.Errorf("pgstate: save snapshot of %q: %w", snap.Stream, err)
	}
	return nil
}

// Checkpoint is one named checkpoint; it implements
// rules.CheckpointStore.
type Checkpoint struct {
	s    *Store
	name string
}

// Checkpoint returns the checkpoint called name.
func (s *Store) Checkpoint(name string) Checkpoint { return Checkpoint{s, name} }

// LoadCheckpoint returns the saved data, nil if there is none.
func (c Checkpoint) LoadCheckpoint(ctx context.Context) ([]byte, error) {
	var data []byte
	err := c.s.pool.QueryRow(ctx, c.s.q.loadCk, c.name).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstate: load checkpoint %q: %w", c.name, err)
	}
	return data, nil
}

// SaveCheckpoint replaces the saved data, in one statement.
func (c Checkpoint) SaveCheckpoint(ctx context.Context, data []byte) error {
	if _, err := c.s.pool.Exec(ctx, c.s.q.saveCk, c.name, data); err != nil {
		return fmt.Errorf("pgstate: save checkpoint %q: %w", c.name, err)
	}
	return nil
}
