package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// A Catalog is a directory of read models. Every version of every
// projection lives in a SQLite file of its own (NAME/vN.db), with its
// tables and its checkpoint; catalog.db records the versions and which one
// serves queries. A new version builds in its own file, beside the serving
// one, without contending for its write lock, and takes over in one catalog
// transaction: queries attach the serving files, so each query sees one
// version or the other, never a mix and never a version still building.
type Catalog struct {
	dir string
	db  *sql.DB
	now func() time.Time
}

// VersionState is where a version is in its life.
type VersionState string

const (
	// VersionBuilding: replaying history or catching up; not queried.
	VersionBuilding VersionState = "building"
	// VersionServing: the version queries see. At most one per projection.
	VersionServing VersionState = "serving"
	// VersionRetired: replaced; its file is kept for a grace period so that
	// queries that started on it can finish, then dropped.
	VersionRetired VersionState = "retired"
	// VersionAbandoned: a build given up (its definition was replaced
	// before it finished).
	VersionAbandoned VersionState = "abandoned"
	// VersionDropped: its file is gone.
	VersionDropped VersionState = "dropped"
)

// Version is one version of a projection.
type Version struct {
	Projection string       `json:"projection"`
	Number     int          `json:"version"`
	Definition string       `json:"-"`
	State      VersionState `json:"state"`
	Created    time.Time    `json:"created"`
	Changed    time.Time    `json:"changed"` // when State last changed
	// Progress as the version's builder last reported it.
	Position uint64  `json:"position"`
	Until    uint64  `json:"until,omitempty"` // the replay's target
	Rate     float64 `json:"events_per_second,omitempty"`
}

// Sentinel errors of the catalog.
var (
	// ErrBuilding: the projection has no serving version yet; queries get
	// its build status instead of partial rows.
	ErrBuilding = errors.New("projection: building")
	// ErrNoVersion: no such version.
	ErrNoVersion = errors.New("projection: no such version")
)

const catalogDDL = `
CREATE TABLE IF NOT EXISTS strata_versions (
	projection TEXT NOT NULL,
	version    INTEGER NOT NULL,
	definition TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_at TEXT NOT NULL,
	changed_at TEXT NOT NULL,
	position   INTEGER NOT NULL DEFAULT 0,
	until      INTEGER NOT NULL DEFAULT 0,
	rate       REAL NOT NULL DEFAULT 0,
	PRIMARY KEY (projection, version)
);`

// OpenCatalog opens (creating it if needed) the catalog in dir.
func OpenCatalog(dir string) (*Catalog, error) {
	db, err := OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(catalogDDL); err != nil {
		db.Close()
		return nil, fmt.Errorf("projection: catalog: %w", err)
	}
	return &Catalog{dir: dir, db: db, now: time.Now}, nil
}

// Close closes the catalog.
func (c *Catalog) Close() error { return c.db.Close() }

// Dir is the catalog's directory.
func (c *Catalog) Dir() string { return c.dir }

var projectionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Path is the file of version v.
func (c *Catalog) Path(v Version) string {
	return filepath.Join(c.dir, v.Projection, fmt.Sprintf("v%d.db", v.Number))
}

// Open opens version v's database for writing (a builder or runner).
func (c *Catalog) Open(v Version) (*sql.DB, error) { return OpenSQLite(c.Path(v)) }

const versionCols = `projection, version, definition, state, created_at, changed_at, position, until, rate`

func scanVersion(sc interface{ Scan(...any) error }) (Version, error) {
	var v Version
	var created, changed string
	if err := sc.Scan(&v.Projection, &v.Number, &v.Definition, &v.State, &created, &changed, &v.Position, &v.Until, &v.Rate); err != nil {
		return Version{}, err
	}
	v.Created, _ = time.Parse(time.RFC3339Nano, created)
	v.Changed, _ = time.Parse(time.RFC3339Nano, changed)
	return v, nil
}

// Versions returns the versions of a projection ("" for every projection),
// oldest first.
func (c *Catalog) Versions(ctx context.Context, name string) ([]Version, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+versionCols+` FROM strata_versions WHERE ? = '' OR projection = ? ORDER BY projection, version`, name, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Latest returns the projection's serving version and its building one,
// either of which may be missing (ok false).
func (c *Catalog) Latest(ctx context.Context, name string) (serving, building Version, hasServing, hasBuilding bool, err error) {
	vs, err := c.Versions(ctx, name)
	if err != nil {
		return
	}
	for _, v := range vs {
		switch v.State {
		case VersionServing:
			serving, hasServing = v, true
		case VersionBuilding:
			building, hasBuilding = v, true
		}
	}
	return
}

// Begin returns the projection's building version with this definition,
// creating it (and abandoning a building version of another definition)
// if there is none.
func (c *Catalog) Begin(ctx context.Context, name, definition string) (Version, error) {
	if !projectionName.MatchString(name) {
		return Version{}, fmt.Errorf("projection: name %q: use letters, digits and _ (a SQL identifier, at most 63 characters)", name)
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Version{}, err
	}
	defer tx.Rollback()
	row := tx.QueryRowContext(ctx, `SELECT `+versionCols+` FROM strata_versions WHERE projection = ? AND state = ?`, name, VersionBuilding)
	if v, err := scanVersion(row); err == nil && v.Definition == definition {
		return v, nil
	} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Version{}, err
	}
	now := c.now().UTC().Format(time.RFC3339Nano)
	if _, err := tx.ExecContext(ctx, `UPDATE strata_versions SET state = ?, changed_at = ? WHERE projection = ? AND state = ?`,
		VersionAbandoned, now, name, VersionBuilding); err != nil {
		return Version{}, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) + 1 FROM strata_versions WHERE projection = ?`, name).Scan(&n); err != nil {
		return Version{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO strata_versions (projection, version, definition, state, created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?)`,
		name, n, definition, VersionBuilding, now, now); err != nil {
		return Version{}, err
	}
	if err := tx.Commit(); err != nil {
		return Version{}, err
	}
	// A file left by an earlier catalog with this number would hold
	// another build's rows.
	v := Version{Projection: name, Number: n, Definition: definition, State: VersionBuilding}
	if err := removeDB(c.Path(v)); err != nil {
		return Version{}, err
	}
	return v, nil
}

// Abandon gives up a building version.
func (c *Catalog) Abandon(ctx context.Context, v Version) error {
	_, err := c.db.ExecContext(ctx, `UPDATE strata_versions SET state = ?, changed_at = ? WHERE projection = ? AND version = ? AND state = ?`,
		VersionAbandoned, c.now().UTC().Format(time.RFC3339Nano), v.Projection, v.Number, VersionBuilding)
	return err
}

// Report records a building version's progress for other processes'
// status displays.
func (c *Catalog) Report(ctx context.Context, v Version, position, until uint64, rate float64) error {
	_, err := c.db.ExecContext(ctx, `UPDATE strata_versions SET position = ?, until = ?, rate = ? WHERE projection = ? AND version = ?`,
		position, until, rate, v.Projection, v.Number)
	return err
}

// Switch makes version number of the projection the serving one and
// retires the one serving before, in one transaction: queries that start
// after it see the new version only.
func (c *Catalog) Switch(ctx context.Context, name string, number int) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := c.now().UTC().Format(time.RFC3339Nano)
	if _, err := tx.ExecContext(ctx, `UPDATE strata_versions SET state = ?, changed_at = ? WHERE projection = ? AND state = ?`,
		VersionRetired, now, name, VersionServing); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE strata_versions SET state = ?, changed_at = ? WHERE projection = ? AND version = ? AND state = ?`,
		VersionServing, now, name, number, VersionBuilding)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err == nil {
			err = fmt.Errorf("%w: %s version %d is not building", ErrNoVersion, name, number)
		}
		return err
	}
	return tx.Commit()
}

// DropRetired deletes the files of versions retired or abandoned longer
// than grace ago, and marks them dropped.
func (c *Catalog) DropRetired(ctx context.Context, grace time.Duration) error {
	vs, err := c.Versions(ctx, "")
	if err != nil {
		return err
	}
	for _, v := range vs {
		if (v.State != VersionRetired && v.State != VersionAbandoned) || c.now().Sub(v.Changed) < grace {
			continue
		}
		if err := removeDB(c.Path(v)); err != nil {
			return err
		}
		if _, err := c.db.ExecContext(ctx, `UPDATE strata_versions SET state = ?, changed_at = ? WHERE projection = ? AND version = ?`,
			VersionDropped, c.now().UTC().Format(time.RFC3339Nano), v.Projection, v.Number); err != nil {
			return err
		}
	}
	return nil
}

// removeDB removes a SQLite database and its WAL files.
func removeDB(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// maxAttached is SQLite's default limit of attached databases.
const maxAttached = 10

// QueryConn is a read-only connection that sees the serving version of
// every projection (each attached under the projection's name, so its
// tables are found by their own names), and what each one reflects.
type QueryConn struct {
	*sql.Conn
	db *sql.DB
	// Serving maps each projection with a serving version to it.
	Serving map[string]Version
	// Building holds the projections that have no serving version yet.
	Building map[string]Version
	catalog  *Catalog
}

// Close releases the connection.
func (q *QueryConn) Close() error {
	err := q.Conn.Close()
	return errors.Join(err, q.db.Close())
}

// OpenQuery opens a read-only connection to the serving versions.
func (c *Catalog) OpenQuery(ctx context.Context) (*QueryConn, error) {
	vs, err := c.Versions(ctx, "")
	if err != nil {
		return nil, err
	}
	q := &QueryConn{Serving: map[string]Version{}, Building: map[string]Version{}, catalog: c}
	for _, v := range vs {
		switch v.State {
		case VersionServing:
			q.Serving[v.Projection] = v
		case VersionBuilding:
			q.Building[v.Projection] = v
		}
	}
	for name := range q.Serving {
		delete(q.Building, name)
	}
	if len(q.Serving) > maxAttached {
		return nil, fmt.Errorf("projection: %d read models serve, but one query can see at most %d", len(q.Serving), maxAttached)
	}
	db, err := sql.Open(driverName, "file::memory:?_query_only=true")
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	q.Conn, q.db = conn, db
	for name, v := range q.Serving {
		// The catalog's names are SQL identifiers (Begin checks), so
		// quoting them is enough.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ATTACH DATABASE ? AS "%s"`, name), "file:"+c.Path(v)+"?mode=ro"); err != nil {
			q.Close()
			return nil, fmt.Errorf("projection: attach %s version %d: %w", name, v.Number, err)
		}
	}
	return q, nil
}

// Reflects returns the position the serving version of name has applied.
func (q *QueryConn) Reflects(ctx context.Context, name string) (uint64, error) {
	if _, ok := q.Serving[name]; !ok {
		if v, ok := q.Building[name]; ok {
			return 0, buildingError(v)
		}
		return 0, fmt.Errorf("%w %q", ErrUnknownProjection, name)
	}
	var pos uint64
	err := q.QueryRowContext(ctx, fmt.Sprintf(`SELECT position FROM "%s".strata_checkpoints WHERE projection = ?`, name), name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

// Explain turns a query's "no such table" error into ErrBuilding when the
// table belongs to a projection that is still building, with its progress.
func (q *QueryConn) Explain(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	const prefix = "no such table: "
	i := strings.Index(msg, prefix)
	if i < 0 {
		return err
	}
	table := strings.TrimSpace(msg[i+len(prefix):])
	for _, v := range q.Building {
		if hasTable(q.catalog.Path(v), table) {
			return buildingError(v)
		}
	}
	return err
}

func hasTable(path, table string) bool {
	db, err := sql.Open(driverName, "file:"+path+"?mode=ro")
	if err != nil {
		return false
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?`, table).Scan(&n)
	return err == nil && n > 0
}

// BuildingError is the error a query about a building projection gets.
type BuildingError struct{ Version Version }

func (e *BuildingError) Error() string {
	v := e.Version
	msg := fmt.Sprintf("projection %s is building (version %d)", v.Projection, v.Number)
	if v.Until > 0 {
		msg += fmt.Sprintf(": at position %d of %d (%.0f%%)", v.Position, v.Until, 100*float64(v.Position)/float64(v.Until))
		if v.Rate > 0 && v.Until > v.Position {
			msg += fmt.Sprintf(", %.0f events/s, about %s left", v.Rate, (time.Duration(float64(v.Until-v.Position)/v.Rate) * time.Second).Round(time.Second))
		}
	}
	return msg
}

func (e *BuildingError) Unwrap() error { return ErrBuilding }

func buildingError(v Version) error { return &BuildingError{Version: v} }
