package peers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// NaivePG is the event table most teams write first: a bigserial position,
// and a unique (stream, version) constraint that turns a concurrent append
// into a unique violation.
type NaivePG struct {
	pool  *pgxpool.Pool
	table string
}

// ErrConflict is a unique violation on (stream, version).
var ErrConflict = errors.New("peers: version conflict")

// OpenNaivePG creates (or recreates) table in the database at url.
func OpenNaivePG(ctx context.Context, url, table string, conns int32) (*NaivePG, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n := &NaivePG{pool: pool, table: pgIdent(table)}
	_, err = pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s;
CREATE TABLE %[1]s (
	position   bigserial PRIMARY KEY,
	stream     text NOT NULL,
	version    bigint NOT NULL,
	type       text NOT NULL,
	data       jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (stream, version)
)`, n.table))
	if err != nil {
		pool.Close()
		return nil, err
	}
	return n, nil
}

// Append inserts one event at version expected+1, in its own transaction.
func (n *NaivePG) Append(ctx context.Context, stream string, expected int64, typ string, data []byte) error {
	_, err := n.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (stream, version, type, data) VALUES ($1, $2, $3, $4)`, n.table),
		stream, expected+1, typ, data)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s at %d", ErrConflict, stream, expected+1)
	}
	return err
}

// Count returns the number of events stored.
func (n *NaivePG) Count(ctx context.Context) (int64, error) {
	var c int64
	err := n.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s`, n.table)).Scan(&c)
	return c, err
}

// Close drops the table and closes the pool.
func (n *NaivePG) Close(ctx context.Context) error {
	_, err := n.pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s`, n.table))
	n.pool.Close()
	return err
}

func pgIdent(s string) string { return `"` + s + `"` }

// AppendBatch inserts n events at versions expected+1… in one multi-row
// INSERT, as a batch is usually written.
func (n *NaivePG) AppendBatch(ctx context.Context, stream string, expected int64, typ string, data []byte, count int) error {
	var sb strings.Builder
	args := make([]any, 0, 2+count)
	args = append(args, stream, typ)
	fmt.Fprintf(&sb, `INSERT INTO %s (stream, version, type, data) VALUES `, n.table)
	for i := range count {
		if i > 0 {
			sb.WriteString(", ")
		}
		args = append(args, expected+1+int64(i))
		fmt.Fprintf(&sb, "($1, $%d, $2, $%d)", len(args), len(args)+1)
		args = append(args, data)
	}
	_, err := n.pool.Exec(ctx, sb.String(), args...)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s at %d", ErrConflict, stream, expected+1)
	}
	return err
}

// ReadAll reads every event in position order, the way such a table is
// read: one query, rows streamed.
func (n *NaivePG) ReadAll(ctx context.Context, each func(position int64, data []byte)) error {
	rows, err := n.pool.Query(ctx, fmt.Sprintf(`SELECT position, stream, version, type, data FROM %s ORDER BY position`, n.table))
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		pos, version int64
		stream, typ  string
		data         []byte
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &stream, &version, &typ, &data); err != nil {
			return err
		}
		each(pos, data)
	}
	return rows.Err()
}
