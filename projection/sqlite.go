package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-sqlite3" // chosen by measurement: docs/benchmarks.md
)

// driverName is mattn/go-sqlite3, under a name of our own; every
// connection also has Strata's exact decimal functions, for TEXT money
// columns, which SQLite's own + and * would compute in floating point:
//
//	dec_add(a, b), dec_sub(a, b), dec_mul(a, b)   → TEXT
//
// (registered in C for all connections: decimal_c.go). NULL counts as 0.
const driverName = "strata_sqlite3"

func init() { sql.Register(driverName, &sqlite3.SQLiteDriver{}) }

// OpenSQLite opens (creating if needed) the SQLite read-model database at
// path: WAL journal, synchronous=NORMAL (a power cut may lose the last
// transactions, rows and checkpoint alike, which are then replayed: never
// half of one), foreign keys on, one writer connection.
func OpenSQLite(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("projection: read-model directory: %w", err)
	}
	db, err := sql.Open(driverName, "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("projection: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // SQLite has one writer; one connection avoids SQLITE_BUSY between our own
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("projection: open %s: %w", path, err)
	}
	return db, nil
}

// OpenSQLiteQuery opens the read-model database for queries only: any
// statement that would change it fails (PRAGMA query_only), whatever it is.
func OpenSQLiteQuery(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("projection: no read models at %s: %w", path, err)
	}
	db, err := sql.Open(driverName, "file:"+path+"?_query_only=true&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("projection: open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("projection: open %s: %w", path, err)
	}
	return db, nil
}

// The runtime's own tables, in the read-model database.
const runtimeDDL = `
CREATE TABLE IF NOT EXISTS strata_checkpoints (
	projection TEXT PRIMARY KEY,
	position   INTEGER NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_projection_log (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	projection TEXT NOT NULL,
	action     TEXT NOT NULL,
	position   INTEGER NOT NULL,
	detail     TEXT NOT NULL,
	at         TEXT NOT NULL
);` + stateDDL

// checkpoint reads the projection's position (0 when it has none).
func checkpoint(ctx context.Context, q queryer, name string) (uint64, error) {
	var pos uint64
	err := q.QueryRowContext(ctx, `SELECT position FROM strata_checkpoints WHERE projection = $1`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

// errCheckpointMoved: the stored checkpoint is not where this runner left
// it: another runner of the same projection (another process, say) applied
// events meanwhile. Committing would apply them twice.
var errCheckpointMoved = errors.New("projection: checkpoint moved: another runner is applying this projection")

// advanceCheckpoint moves the checkpoint from one position to another in
// tx, only if it is still at from.
func advanceCheckpoint(ctx context.Context, tx *sql.Tx, name string, from, to uint64, now time.Time) error {
	at := now.UTC().Format(time.RFC3339Nano)
	res, err := tx.ExecContext(ctx, `UPDATE strata_checkpoints SET position = $1, updated_at = $2 WHERE projection = $3 AND position = $4`, to, at, name, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	if from != 0 {
		return errCheckpointMoved
	}
	// No row yet: the first commit creates it, unless another runner's did.
	res, err = tx.ExecContext(ctx, `INSERT INTO strata_checkpoints (projection, position, updated_at) VALUES ($1, $2, $3)
ON CONFLICT(projection) DO NOTHING`, name, to, at)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err == nil {
			err = errCheckpointMoved
		}
		return err
	}
	return nil
}

func logAction(ctx context.Context, tx *sql.Tx, name, action string, pos uint64, detail string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO strata_projection_log (projection, action, position, detail, at) VALUES ($1, $2, $3, $4, $5)`,
		name, action, pos, detail, now.UTC().Format(time.RFC3339Nano))
	return err
}
