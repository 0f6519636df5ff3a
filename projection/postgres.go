package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Read models can live in PostgreSQL instead of SQLite: a Runner or a
// Replay given a database opened by OpenPostgres keeps the same runtime
// tables there (checkpoints in the same transaction as the rows, state,
// operator log, replay partitions), so several Strata nodes can share them
// and take a projection over from each other at its checkpoint. The
// projection's own statements are then PostgreSQL's.
//
// The runtime's statements are written once for both databases: numbered
// placeholders ($1, $2, …) in ascending order, which PostgreSQL takes as
// they are and SQLite numbers in the order they first appear. Only the
// tables' DDL differs.

// OpenPostgres opens the PostgreSQL database at url (a pgx connection
// string) for read models, with schema (created if needed; "" leaves the
// connection's search_path alone) first on every connection's search_path.
func OpenPostgres(ctx context.Context, url, schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("projection: postgres url: %w", err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	db := stdlib.OpenDB(*cfg)
	if schema != "" {
		err = inSetupLock(ctx, db, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize())
			return err
		})
	} else {
		err = db.PingContext(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("projection: open postgres read models: %w", err)
	}
	return db, nil
}

// isPostgres reports whether db is PostgreSQL (through pgx's driver).
func isPostgres(db *sql.DB) bool {
	_, ok := db.Driver().(*stdlib.Driver)
	return ok
}

// setupLockKey is the advisory lock that serialises read-model setup in one
// PostgreSQL database: nodes starting together would otherwise race in
// CREATE … IF NOT EXISTS, which PostgreSQL does not make atomic (the loser
// fails on a unique index of the catalog).
const setupLockKey = 0x53545210 // "STR\x10"

// inSetupLock runs fn in a transaction holding the setup lock.
func inSetupLock(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, setupLockKey); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// postgresRuntimeDDL is runtimeDDL and replayDDL for PostgreSQL: 64-bit
// positions, an identity column for the log.
const postgresRuntimeDDL = `
CREATE TABLE IF NOT EXISTS strata_checkpoints (
	projection TEXT PRIMARY KEY,
	position   BIGINT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_projection_log (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	projection TEXT NOT NULL,
	action     TEXT NOT NULL,
	position   BIGINT NOT NULL,
	detail     TEXT NOT NULL,
	at         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_replay_partitions (
	projection TEXT NOT NULL,
	partition  INTEGER NOT NULL,
	partitions INTEGER NOT NULL,
	until      BIGINT NOT NULL,
	position   BIGINT NOT NULL,
	PRIMARY KEY (projection, partition)
);` + stateDDL

// isNoTablePostgres reports PostgreSQL's undefined_table.
func isNoTablePostgres(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
