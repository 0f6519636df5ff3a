package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// listen opens the dedicated connection that LISTENs on the store's
// channel.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect for LISTEN: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("pgstore: LISTEN %s: %w", s.channel, err)
	}
	return conn, nil
}

// runListener turns every notification on the channel into a local
// broadcast. A notification only says "a round moved the head": waiters
// then read the database, which is the truth, so a lost notification costs
// at most one poll interval. When the connection breaks the listener
// reconnects with backoff; waiters poll meanwhile.
func (s *Store) runListener(conn *pgx.Conn, cfg *pgx.ConnConfig) {
	defer close(s.listenerDone)
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		if conn != nil {
			s.notify.broadcast() // whatever happened while nobody listened
			for {
				if _, err := conn.WaitForNotification(s.ctx); err != nil {
					break
				}
				s.notify.broadcast()
				backoff = minBackoff
			}
			closeConn(conn)
			conn = nil
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
		conn, _ = s.listen(s.ctx, cfg) // on failure, try again after backoff
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}
