package eventlog

import (
	"context"
	"fmt"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// maxAppendBytes caps one append's encoded size: an append is one run in
// the stream index, whose size field is 32 bits, and one write.
const maxAppendBytes = 256 << 20

// appendReq is one Append call travelling through the writer and syncer.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected store.ExpectedVersion
	ids      []event.ID
	userIDs  bool   // every id came from the caller: a retry can be recognised
	frames   []byte // encoded by the caller, sealed by the writer

	res  store.AppendResult
	err  error
	done chan struct{}
}

// Append implements store.Store. Validation and encoding happen here, on the
// caller's goroutine; the writer only orders, checks and patches.
func (l *Log) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	req, err := l.newAppendReq(ctx, stream, expected, events)
	if err != nil {
		return store.AppendResult{}, err
	}
	if err := l.send(ctx, req); err != nil {
		return store.AppendResult{}, err
	}
	select {
	case <-req.done:
		return req.res, req.err
	case <-ctx.Done():
		// The append may still happen; a retry with the same ids is safe.
		return store.AppendResult{}, ctx.Err()
	}
}

// Enqueue is Append in two steps, for a caller that keeps state derived
// from its appends and must not hold that state's lock for an fsync (the
// fraud rules' Authorizer). It returns once the append's place in the log
// is fixed: an append enqueued after it returns, by any caller, is written
// after it, fails if it fails with the log's sticky error, and is
// acknowledged after it. The returned wait blocks until the append is
// durable (or failed) and may be called any number of times.
//
// ctx bounds only the wait to enter the queue: once queued, the append
// happens whatever becomes of ctx, so that what the caller derived from it
// is never contradicted by a cancellation.
func (l *Log) Enqueue(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (wait func() (store.AppendResult, error), err error) {
	req, err := l.newAppendReq(context.WithoutCancel(ctx), stream, expected, events)
	if err != nil {
		return nil, err
	}
	if err := l.send(ctx, req); err != nil {
		return nil, err
	}
	return func() (store.AppendResult, error) {
		<-req.done
		return req.res, req.err
	}, nil
}

// send puts req in the writer's queue.
func (l *Log) send(ctx context.Context, req *appendReq) error {
	if err := l.stickyErr(); err != nil {
		return err
	}
	l.appendMu.RLock()
	defer l.appendMu.RUnlock()
	if l.appendMu.closed {
		return store.ErrClosed
	}
	l.inflight.Add(1)
	select {
	case l.queue <- req:
		return nil
	case <-ctx.Done():
		l.inflight.Add(-1)
		return ctx.Err()
	}
}

func (l *Log) newAppendReq(ctx context.Context, stream string, expected store.ExpectedVersion, events []event.Event) (*appendReq, error) {
	if err := store.CheckAppend(stream, events, l.opts.MaxEventSize); err != nil {
		return nil, err
	}
	req := &appendReq{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		ids:      make([]event.ID, len(events)),
		userIDs:  true,
		done:     make(chan struct{}),
	}
	size, generated := 0, 0
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			generated++
		} else {
			req.ids[i] = e.ID
		}
		size += frameSize(stream, e)
	}
	if generated > 0 {
		req.userIDs = false
		fresh := make([]event.ID, generated)
		event.NewIDs(fresh)
		for i := range req.ids {
			if req.ids[i].IsZero() {
				req.ids[i], fresh = fresh[0], fresh[1:]
			}
		}
	}
	if size > maxAppendBytes {
		return nil, fmt.Errorf("%w: the append is %d bytes encoded, the limit for one append is %d", store.ErrEventTooLarge, size, maxAppendBytes)
	}
	req.frames = make([]byte, 0, size)
	for i := range events {
		e := events[i] // copy: the caller's slice is not ours to change
		e.ID = req.ids[i]
		req.frames = appendFrame(req.frames, stream, &e)
	}
	return req, nil
}
