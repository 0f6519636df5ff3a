package eventlog

import (
	"context"
	"iter"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Subscribe implements store.Store. History and live records come through
// one mechanism: a cursor over the segments that reads up to the published
// head, then waits for the next publication. A subscriber that falls behind
// simply reads from disk (the page cache, usually); nothing is buffered for
// it and nothing is dropped, and since the cursor never moves back or skips,
// the hand-off from history to live has no gap and no duplicate.
func (l *Log) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if l.isClosed() {
			yield(event.Record{}, store.ErrClosed)
			return
		}
		c, err := l.seekCursor(l.view.Load(), opts.After+1)
		if err != nil {
			yield(event.Record{}, err)
			return
		}
		for {
			// Take the channel before the view: a publication after this
			// point closes it, so no wake-up is missed.
			ch := l.notify.Load()
			v := l.view.Load()
			// After may lie beyond the head the cursor started at.
			if !l.scan(ctx, c, v, opts.After, &opts.Filter, yield) {
				return
			}
			select {
			case <-*ch:
			case <-ctx.Done():
				yield(event.Record{}, ctx.Err())
				return
			case <-l.closedCh:
				yield(event.Record{}, store.ErrClosed)
				return
			}
		}
	}
}

func (l *Log) subscriptionEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.isClosed() {
		return store.ErrClosed
	}
	return nil
}
