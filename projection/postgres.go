package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stratadb/strata/event"
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
// connection's search_path alone) first on every connection's search_path,
// and the decimal functions dec_add, dec_sub and dec_mul in it.
func OpenPostgres(ctx context.Context, url, schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("projection: postgres url: %w", err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	db := stdlib.OpenDB(*cfg)
	err = inSetupLock(ctx, db, func(tx *sql.Tx) error {
		if schema != "" {
			if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, postgresDecimalDDL)
		return err
	})
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
);` + stateDDL + postgresDecimalDDL

// postgresDecimalDDL gives PostgreSQL read models SQLite's exact decimal
// functions, so that one projection's SQL serves both: TEXT in and out,
// NULL as 0, the result normalised as the SQLite ones and
// shopspring/decimal write it (no trailing zeros after the point).
// Overloads with a numeric argument let a number literal stand on either
// side (dec_add(:data.amount, 0)), which PostgreSQL would not turn into
// text by itself.
const postgresDecimalDDL = `
CREATE OR REPLACE FUNCTION dec_add(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT trim_scale(coalesce(a, '0')::numeric + coalesce(b, '0')::numeric)::text $$;
CREATE OR REPLACE FUNCTION dec_sub(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT trim_scale(coalesce(a, '0')::numeric - coalesce(b, '0')::numeric)::text $$;
CREATE OR REPLACE FUNCTION dec_mul(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT trim_scale(coalesce(a, '0')::numeric * coalesce(b, '0')::numeric)::text $$;
CREATE OR REPLACE FUNCTION dec_add(a text, b numeric) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT dec_add(a, b::text) $$;
CREATE OR REPLACE FUNCTION dec_add(a numeric, b text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT dec_add(a::text, b) $$;
CREATE OR REPLACE FUNCTION dec_sub(a text, b numeric) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT dec_sub(a, b::text) $$;
CREATE OR REPLACE FUNCTION dec_sub(a numeric, b text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT dec_sub(a::text, b) $$;
CREATE OR REPLACE FUNCTION dec_mul(a text, b numeric) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT dec_mul(a, b::text) $$;
CREATE OR REPLACE FUNCTION dec_mul(a numeric, b text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT dec_mul(a::text, b) $$;`

// PostgresBatcher is a projection that, writing into PostgreSQL, queues a
// batch's statements for pgx to send together: a Runner then pays one
// round trip per batch where database/sql pays one per statement.
// Declarative projections are PostgresBatchers.
type PostgresBatcher interface {
	QueueBatch(b *pgx.Batch, batch []event.Record) error
}

// commitPostgresBatch applies entries through p and moves checkpoint name
// from..to, in one transaction on one of db's connections, in two round
// trips: the statements with the checkpoint's move, then COMMIT (or
// ROLLBACK, if the checkpoint had moved).
func commitPostgresBatch(ctx context.Context, db *sql.DB, p PostgresBatcher, projection, name string, entries []entry, from, to uint64, now time.Time) error {
	recs := make([]event.Record, 0, len(entries))
	for i := range entries {
		if entries[i].skip {
			continue
		}
		if entries[i].err != nil {
			return entries[i].err
		}
		recs = append(recs, entries[i].rec)
	}
	b := &pgx.Batch{}
	if err := p.QueueBatch(b, recs); err != nil {
		return err
	}
	n := b.Len()
	at := now.UTC().Format(time.RFC3339Nano)
	b.Queue(`UPDATE strata_checkpoints SET position = $1, updated_at = $2 WHERE projection = $3 AND position = $4`, int64(to), at, name, int64(from))
	if from == 0 {
		// No row yet: the first commit creates it, unless another
		// runner's did.
		b.Queue(`INSERT INTO strata_checkpoints (projection, position, updated_at) VALUES ($1, $2, $3) ON CONFLICT (projection) DO NOTHING`, name, int64(to), at)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		tx, err := dc.(*stdlib.Conn).Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		br := tx.SendBatch(ctx, b)
		moved := int64(0)
		for i := range b.Len() {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				if i < n && len(recs) == 1 {
					r := &recs[0]
					return fmt.Errorf("projection %s: event %d (%s): %w", projection, r.Position, r.Type, err)
				}
				return fmt.Errorf("projection %s: %w", projection, err)
			}
			if i >= n {
				moved += tag.RowsAffected()
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		if moved != 1 {
			return errCheckpointMoved
		}
		return tx.Commit(ctx)
	})
}

// isNoTablePostgres reports PostgreSQL's undefined_table.
func isNoTablePostgres(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
