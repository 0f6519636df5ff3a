package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A projection's state lives in the read-model database beside its
// checkpoint, so that tools in another process (strata projection …) can
// see it and change it: they set "paused" or "running", or skip a failed
// projection's event; a runner polls the row and follows. Only a runner sets
// "failed". heartbeat_at says whether a runner is at work.
const stateDDL = `
CREATE TABLE IF NOT EXISTS strata_projection_state (
	projection   TEXT PRIMARY KEY,
	state        TEXT NOT NULL,
	failure      TEXT,
	heartbeat_at TEXT
);`

// ErrUnknownProjection: no projection of that name has run in this database.
var ErrUnknownProjection = errors.New("projection: unknown projection")

func saveState(ctx context.Context, db execer, name string, s State, f *Failure) error {
	var failure any
	if f != nil {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		failure = string(b)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO strata_projection_state (projection, state, failure) VALUES ($1, $2, $3)
ON CONFLICT(projection) DO UPDATE SET state = excluded.state, failure = excluded.failure`, name, string(s), failure)
	return err
}

func heartbeat(ctx context.Context, db execer, name string, now time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE strata_projection_state SET heartbeat_at = $1 WHERE projection = $2`, now.UTC().Format(time.RFC3339Nano), name)
	return err
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type queryer interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// Stored is a projection's state as stored in the read-model database.
type Stored struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Position  uint64    `json:"position"`
	Failure   *Failure  `json:"failure,omitempty"`
	Heartbeat time.Time `json:"heartbeat,omitempty"` // zero: no runner ever
}

// Active reports whether a runner was at work within the last few seconds.
func (s Stored) Active(now time.Time) bool {
	return !s.Heartbeat.IsZero() && now.Sub(s.Heartbeat) < 3*time.Second
}

// ReadStored returns what the database says of projection name.
func ReadStored(ctx context.Context, db *sql.DB, name string) (Stored, error) {
	return readStored(ctx, db, name)
}

func readStored(ctx context.Context, db queryer, name string) (Stored, error) {
	s := Stored{Name: name}
	var state string
	var failure, hb sql.NullString
	err := db.QueryRowContext(ctx, `SELECT state, failure, heartbeat_at FROM strata_projection_state WHERE projection = $1`, name).Scan(&state, &failure, &hb)
	if errors.Is(err, sql.ErrNoRows) || err != nil && isNoTable(err) {
		return s, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	if err != nil {
		return s, err
	}
	s.State = State(state)
	if failure.Valid {
		var f Failure
		if json.Unmarshal([]byte(failure.String), &f) == nil {
			s.Failure = &f
		}
	}
	if hb.Valid {
		s.Heartbeat, _ = time.Parse(time.RFC3339Nano, hb.String)
	}
	s.Position, err = checkpoint(ctx, db, name)
	return s, err
}

// isNoTable reports the error for a database no runner has set up.
func isNoTable(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such table") || isNoTablePostgres(err))
}

// ListStored returns every projection the database knows, by name.
func ListStored(ctx context.Context, db *sql.DB) ([]Stored, error) {
	rows, err := db.QueryContext(ctx, `SELECT projection FROM strata_projection_state ORDER BY projection`)
	if isNoTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	out := make([]Stored, 0, len(names))
	for _, n := range names {
		s, err := readStored(ctx, db, n)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SetPaused pauses (or resumes) projection name from outside its runner,
// recording the action in strata_projection_log: a running runner follows
// within its poll interval, a runner started later starts paused. Resuming
// a failed projection retries its failing event.
func SetPaused(ctx context.Context, db *sql.DB, name string, paused bool) error {
	s, err := readStored(ctx, db, name)
	if err != nil {
		return err
	}
	want, action := StateRunning, "resume"
	if paused {
		want, action = StatePaused, "pause"
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := logAction(ctx, tx, name, action, s.Position, "from outside the runner (was "+string(s.State)+")", time.Now()); err != nil {
		return err
	}
	if err := saveState(ctx, tx, name, want, s.Failure); err != nil {
		return err
	}
	return tx.Commit()
}

// SkipFailed moves failed projection name past the event it failed on,
// recording the skip and reason in strata_projection_log.
func SkipFailed(ctx context.Context, db *sql.DB, name, reason string, now time.Time) error {
	s, err := readStored(ctx, db, name)
	if err != nil {
		return err
	}
	if s.State != StateFailed || s.Failure == nil {
		return fmt.Errorf("%w (it is %s)", ErrNotFailed, s.State)
	}
	return skipFailed(ctx, db, name, s.Failure, reason, now)
}

func skipFailed(ctx context.Context, db *sql.DB, name string, f *Failure, reason string, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	detail := fmt.Sprintf("skipped %s event of %s (%s): %s", f.Type, f.Stream, f.Err, reason)
	if err := logAction(ctx, tx, name, "skip", f.Position, detail, now); err != nil {
		return err
	}
	if err := advanceCheckpoint(ctx, tx, name, f.Position-1, f.Position, now); err != nil {
		return err
	}
	if err := saveState(ctx, tx, name, StateRunning, nil); err != nil {
		return err
	}
	return tx.Commit()
}
