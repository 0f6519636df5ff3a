package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded SQL file, named NNNN_name.sql. Its text refers
// to the schema as {schema}.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Versions
// must run 1, 2, 3, ... without a gap.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("pgstore: read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("pgstore: migration file %q is not named NNNN_name.sql", e.Name())
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("pgstore: migration %q has version %d, want %d", e.Name(), v, len(ms)+1)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("pgstore: read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// migrate brings schema up to the newest embedded migration. Everything
// happens in one transaction that first takes an advisory lock for the
// schema: two processes opening at once are serialised, the second finds
// the work done, and a failed migration leaves nothing behind. Each applied
// version is recorded in strata_migrations.
//
// Then, under the same lock, it positions the pending transactions a
// restore brought from another cluster (strata_adopt, see the package doc)
// and returns how many there were.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, key int32) (adopted int64, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, err
	}
	err = migrateWith(ctx, pool, schema, key, ms, func(tx pgx.Tx) error {
		q := newQueries(pgx.Identifier{schema}.Sanitize())
		if err := tx.QueryRow(ctx, q.adopt, lockClassSequence, key, channelName(schema)).Scan(&adopted); err != nil {
			return fmt.Errorf("pgstore: position the transactions of a restored dump: %w", err)
		}
		return nil
	})
	return adopted, err
}

// migrateWith is migrate with the migrations given (the first versions, in
// order): the tests build older schemas with it. then, if not nil, runs in
// the same transaction after the migrations.
func migrateWith(ctx context.Context, pool *pgxpool.Pool, schema string, key int32, ms []migration, then func(pgx.Tx) error) error {
	qs := pgx.Identifier{schema}.Sanitize()
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClassMigrate, key); err != nil {
			return fmt.Errorf("pgstore: lock schema %s for migration: %w", qs, err)
		}
		// After the lock, so that concurrent opens do not race to create.
		// Each statement below takes a new snapshot and so sees what a
		// process that held the lock before committed.
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+qs); err != nil {
			return fmt.Errorf("pgstore: create schema %s: %w", qs, err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+qs+`.strata_migrations (
	version int PRIMARY KEY,
	name    text NOT NULL,
	applied timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("pgstore: create %s.strata_migrations: %w", qs, err)
		}
		var applied int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+qs+`.strata_migrations`).Scan(&applied); err != nil {
			return fmt.Errorf("pgstore: read applied migrations: %w", err)
		}
		if applied > len(ms) {
			return fmt.Errorf("pgstore: schema %s is at migration %d, this build knows only up to %d: %w", qs, applied, len(ms), errNewerSchema)
		}
		for _, m := range ms[applied:] {
			// {seq} goes in a string literal (nextval's argument), where
			// a quote in the schema's name must be doubled.
			seq := "'" + strings.ReplaceAll(qs+".strata_tx_seq", "'", "''") + "'"
			sql := strings.NewReplacer("{seq}", seq, "{schema}", qs).Replace(m.sql)
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("pgstore: migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+qs+`.strata_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("pgstore: record migration %d: %w", m.version, err)
			}
		}
		if then != nil {
			return then(tx)
		}
		return nil
	})
}

// errNewerSchema: the database was migrated by a newer build.
var errNewerSchema = errors.New("pgstore: schema is newer than this build")
