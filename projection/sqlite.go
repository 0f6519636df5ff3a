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
	"github.com/shopspring/decimal"
)

// driverName is mattn/go-sqlite3 with Strata's functions registered on
// every connection: exact decimal arithmetic on TEXT money columns, which
// SQLite's own + and * would do in floating point.
//
//	dec_add(a, b), dec_sub(a, b), dec_mul(a, b)   → TEXT
//
// NULL arguments count as 0.
const driverName = "strata_sqlite3"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for name, op := range map[string]func(a, b decimal.Decimal) decimal.Decimal{
			"dec_add": decimal.Decimal.Add,
			"dec_sub": decimal.Decimal.Sub,
			"dec_mul": decimal.Decimal.Mul,
		} {
			fn := func(a, b any) (string, error) {
				x, err := toDecimal(a)
				if err != nil {
					return "", err
				}
				y, err := toDecimal(b)
				if err != nil {
					return "", err
				}
				return op(x, y).String(), nil
			}
			if err := c.RegisterFunc(name, fn, true); err != nil {
				return err
			}
		}
		return nil
	}})
}

func toDecimal(v any) (decimal.Decimal, error) {
	switch v := v.(type) {
	case nil:
		return decimal.Zero, nil
	case int64:
		return decimal.NewFromInt(v), nil
	case float64:
		return decimal.NewFromFloat(v), nil
	case string:
		return decimal.NewFromString(v)
	case []byte:
		if v == nil { // how the driver passes SQL NULL to an any argument
			return decimal.Zero, nil
		}
		return decimal.NewFromString(string(v))
	}
	return decimal.Decimal{}, fmt.Errorf("not a number: %v", v)
}

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
func checkpoint(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (uint64, error) {
	var pos uint64
	err := q.QueryRowContext(ctx, `SELECT position FROM strata_checkpoints WHERE projection = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

func saveCheckpoint(ctx context.Context, tx *sql.Tx, name string, pos uint64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO strata_checkpoints (projection, position, updated_at) VALUES (?, ?, ?)
ON CONFLICT(projection) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
		name, pos, now.UTC().Format(time.RFC3339Nano))
	return err
}

func logAction(ctx context.Context, tx *sql.Tx, name, action string, pos uint64, detail string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO strata_projection_log (projection, action, position, detail, at) VALUES (?, ?, ?, ?, ?)`,
		name, action, pos, detail, now.UTC().Format(time.RFC3339Nano))
	return err
}
