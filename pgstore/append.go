package pgstore

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// maxAppendBytes caps one append's event bytes: it travels as one set of
// query parameters, and PostgreSQL refuses messages over 1 GiB.
const maxAppendBytes = 256 << 20

// appendReq is one Append call travelling through the writer and, if its
// rows cannot be positioned at once, the acker.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected store.ExpectedVersion
	userIDs  bool // every id came from the caller: a retry can be recognised
	bytes    int  // event bytes, for sizing groups
	again    int  // times carried into a newer transaction (writer only)

	// strata_append's array parameters, copied from the caller's events.
	ids      []pgtype.UUID
	types    []string
	schemas  []int32
	data     [][]byte
	metadata [][]byte

	res  store.AppendResult
	err  error
	done chan struct{}
}

// Append implements store.Store. Validation and copying happen here, on
// the caller's goroutine; the writer only batches, sends and sorts out the
// results.
func (s *Store) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	req, err := s.newAppendReq(ctx, stream, expected, events)
	if err != nil {
		return store.AppendResult{}, err
	}
	if err := s.send(ctx, req); err != nil {
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

// send puts req in the writer's queue.
func (s *Store) send(ctx context.Context, req *appendReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.appendMu.RLock()
	defer s.appendMu.RUnlock()
	if s.appendMu.closed {
		return store.ErrClosed
	}
	select {
	case s.queue <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish delivers req's outcome to its caller.
func (r *appendReq) finish(res store.AppendResult, err error) {
	if err != nil {
		res = store.AppendResult{}
	}
	r.res, r.err = res, err
	close(r.done)
}

// newAppendReq checks an append exactly as the embedded log does, before
// anything reaches the database.
func (s *Store) newAppendReq(ctx context.Context, stream string, expected store.ExpectedVersion, events []event.Event) (*appendReq, error) {
	if err := store.CheckAppend(stream, events, s.opts.MaxEventSize); err != nil {
		return nil, err
	}
	n := len(events)
	req := &appendReq{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		userIDs:  true,
		ids:      make([]pgtype.UUID, n),
		types:    make([]string, n),
		schemas:  make([]int32, n),
		data:     make([][]byte, n),
		metadata: make([][]byte, n),
		done:     make(chan struct{}),
	}
	size, generated := 0, 0
	for i := range events {
		if events[i].ID.IsZero() {
			generated++
		}
		size += events[i].Size()
	}
	if size > maxAppendBytes {
		return nil, fmt.Errorf("%w: the append is %d bytes, the limit for one append is %d", store.ErrEventTooLarge, size, maxAppendBytes)
	}
	ids := make([]event.ID, n)
	for i := range events {
		ids[i] = events[i].ID
	}
	if generated > 0 {
		req.userIDs = false
		fresh := make([]event.ID, generated)
		event.NewIDs(fresh)
		for i := range ids {
			if ids[i].IsZero() {
				ids[i], fresh = fresh[0], fresh[1:]
			}
		}
	}
	// One copy of every payload: the caller may reuse its buffers as soon
	// as Append returns, which can be before the writer sends them (when
	// ctx ends first).
	buf := make([]byte, 0, size)
	clone := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	for i := range events {
		e := &events[i]
		req.ids[i] = pgtype.UUID{Bytes: ids[i], Valid: true}
		req.types[i] = e.Type
		// The column is a signed int: the uint32 is stored bit for bit.
		req.schemas[i] = int32(e.Schema)
		req.data[i] = clone(e.Data)
		req.metadata[i] = clone(e.Metadata)
	}
	req.bytes = size
	return req, nil
}

// args returns strata_append's arguments for req.
func (r *appendReq) args() []any {
	kind, v := expectedArgs(r.expected)
	return []any{r.stream, kind, v, r.userIDs, r.ids, r.types, r.schemas, r.data, r.metadata}
}

// expectedArgs encodes an expected version as strata_append takes it. A
// version beyond int64 cannot be any stream's, and stays one that is not.
func expectedArgs(e store.ExpectedVersion) (kind int32, version int64) {
	if v, exact := e.Version(); exact {
		return kindExactly, int64(min(v, math.MaxInt64))
	}
	if e.IsAny() {
		return kindAny, 0
	}
	return kindStreamExists, 0
}
