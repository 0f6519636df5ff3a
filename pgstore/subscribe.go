package pgstore

import (
	"context"
	"iter"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Subscribe implements store.Store. History and live records come through
// one mechanism: a cursor over positions that reads pages up to the head,
// then waits for a wake-up (a NOTIFY from any process's round, a local
// round, or the poll interval) and reads again. Positions are dense and
// only ever appear whole, a round at a time, so a cursor that never moves
// back or skips has no gap and no duplicate across the hand-off from
// history to live. Nothing is buffered for a slow subscriber: it reads
// from the table at its own pace.
func (s *Store) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if s.isClosed() {
			yield(event.Record{}, store.ErrClosed)
			return
		}
		c := newLogCursor(opts.After, &opts.Filter)
		for {
			if err := ctx.Err(); err != nil {
				yield(event.Record{}, err)
				return
			}
			if s.isClosed() {
				yield(event.Record{}, store.ErrClosed)
				return
			}
			// Take the channel before reading: a round after this point
			// closes it, so no wake-up is missed.
			wake := s.notify.wait()
			head, recs, err := s.logPage(ctx, c, maxPosition, pageSize)
			if err != nil {
				yield(event.Record{}, s.readErr(ctx, "subscribe", err))
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if c.after < head {
				continue // more history
			}
			timer := time.NewTimer(s.opts.PollInterval)
			select {
			case <-wake:
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				yield(event.Record{}, ctx.Err())
				return
			case <-s.closedCh:
				timer.Stop()
				yield(event.Record{}, store.ErrClosed)
				return
			}
			timer.Stop()
		}
	}
}

// maxPosition is the largest position PostgreSQL's bigint holds.
const maxPosition = 1<<63 - 1
