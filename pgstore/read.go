package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

const (
	// pageSize is how many records one query fetches. Reads fetch a page,
	// give the connection back and only then yield it: a loop body may
	// append, or stall, without holding a connection. 2048 read the log
	// about 1.5 times as fast as 256 (fewer round trips; docs/benchmarks.md)
	// for at most a few MiB held per reader.
	pageSize = 2048
	// filterWindow is how many positions one filtered log query scans at
	// most, so that a selective filter does not scan the log in one query.
	filterWindow = 8 * pageSize
)

// ReadStream implements store.Store. It returns positioned rows only; a
// stream's positioned rows are always its first versions, since positions
// follow transaction ids and an append's transaction is never older than
// the one that wrote the stream's previous event.
func (s *Store) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if err := event.ValidateStream(stream); err != nil {
			yield(event.Record{}, err)
			return
		}
		if s.isClosed() {
			yield(event.Record{}, store.ErrClosed)
			return
		}
		from := min(opts.From, math.MaxInt64)
		query := s.q.streamFwd
		if opts.Backwards {
			query = s.q.streamBack
			if from == 0 {
				from = math.MaxInt64
			}
		} else if from == 0 {
			from = 1
		}
		left := max(opts.Limit, 0) // a negative limit is no limit
		for first := true; ; first = false {
			if err := ctx.Err(); err != nil {
				yield(event.Record{}, err)
				return
			}
			limit := pageSize
			if left > 0 {
				limit = min(limit, left)
			}
			found, recs, err := s.streamPage(ctx, query, stream, from, limit)
			if err != nil {
				yield(event.Record{}, s.readErr(ctx, fmt.Sprintf("read stream %q", stream), err))
				return
			}
			if first && !found {
				yield(event.Record{}, fmt.Errorf("%w: %q", store.ErrStreamNotFound, stream))
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if len(recs) < limit {
				return
			}
			if left > 0 {
				if left -= len(recs); left == 0 {
					return
				}
			}
			last := recs[len(recs)-1].Version
			if opts.Backwards {
				if last <= 1 {
					return
				}
				from = last - 1
			} else {
				from = last + 1
			}
		}
	}
}

// ReadAll implements store.Store. It reads up to the head the first page
// saw; every position up to a head is visible, so the read has no gap.
func (s *Store) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if s.isClosed() {
			yield(event.Record{}, store.ErrClosed)
			return
		}
		c := newLogCursor(opts.After, &opts.Filter)
		upto := uint64(math.MaxInt64)
		left := max(opts.Limit, 0) // a negative limit is no limit
		for {
			if err := ctx.Err(); err != nil {
				yield(event.Record{}, err)
				return
			}
			limit := pageSize
			if left > 0 {
				limit = min(limit, left)
			}
			head, recs, err := s.logPage(ctx, c, upto, limit)
			if err != nil {
				yield(event.Record{}, s.readErr(ctx, "read log", err))
				return
			}
			upto = min(upto, head)
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if left > 0 {
				if left -= len(recs); left == 0 {
					return
				}
			}
			if c.after >= upto {
				return
			}
		}
	}
}

// logCursor walks the log by position for ReadAll and Subscribe.
type logCursor struct {
	after  uint64 // every record at or before it has been read
	filter *store.Filter
	types  []string // nil: any type
	window uint64
}

func newLogCursor(after uint64, f *store.Filter) *logCursor {
	c := &logCursor{after: min(after, math.MaxInt64), filter: f, window: pageSize}
	if len(f.Types) > 0 {
		c.types = f.Types
	}
	if !f.IsZero() {
		c.window = filterWindow
	}
	return c
}

// logPage reads the next page after c (at most limit records, none past
// upto) and advances c past it. It returns the head it saw.
func (s *Store) logPage(ctx context.Context, c *logCursor, upto uint64, limit int) (uint64, []event.Record, error) {
	upper := min(c.after+c.window, upto, math.MaxInt64)
	var rows pgx.Rows
	var err error
	if c.filter.IsZero() {
		// Positions are dense: (after, upper] holds upper-after records.
		upper = min(upper, c.after+uint64(limit))
		rows, err = s.pool.Query(ctx, s.q.logPage, int64(c.after), int64(upper))
	} else {
		rows, err = s.pool.Query(ctx, s.q.logPageFiltered, int64(c.after), int64(upper), c.types, c.filter.StreamPrefix, limit)
	}
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var head int64
	var recs []event.Record
	var sc recordScan
	dest := append([]any{&head}, sc.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return 0, nil, err
		}
		if sc.position.Valid {
			recs = append(recs, sc.record())
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	if !slices.IsSortedFunc(recs, byPosition) {
		slices.SortFunc(recs, byPosition)
	}
	if len(recs) == limit {
		c.after = recs[len(recs)-1].Position
	} else {
		c.after = max(c.after, min(upper, uint64(head)))
	}
	return uint64(head), recs, nil
}

func byPosition(a, b event.Record) int { return cmp.Compare(a.Position, b.Position) }

// streamPage runs one page of a stream read and reports whether the
// stream has any event at all, in the same snapshot.
func (s *Store) streamPage(ctx context.Context, query, stream string, from uint64, limit int) (bool, []event.Record, error) {
	rows, err := s.pool.Query(ctx, query, stream, int64(from), limit)
	if err != nil {
		return false, nil, err
	}
	defer rows.Close()
	var found bool
	var recs []event.Record
	var sc recordScan
	dest := append([]any{&found}, sc.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return false, nil, err
		}
		if sc.position.Valid {
			recs = append(recs, sc.record())
		}
	}
	return found, recs, rows.Err()
}

// recordScan receives recordColumns. The columns are nullable because the
// page queries join them to the head or to the stream's existence.
type recordScan struct {
	position pgtype.Int8
	stream   pgtype.Text
	version  pgtype.Int8
	id       pgtype.UUID
	typ      pgtype.Text
	schema   pgtype.Int4
	data     []byte
	metadata []byte
	recorded pgtype.Timestamptz
}

func (sc *recordScan) dest() []any {
	return []any{&sc.position, &sc.stream, &sc.version, &sc.id, &sc.typ, &sc.schema, &sc.data, &sc.metadata, &sc.recorded}
}

// record builds the scanned record. pgx gives every scan its own Data and
// Metadata slices.
func (sc *recordScan) record() event.Record {
	return event.Record{
		Event: event.Event{
			ID:       event.ID(sc.id.Bytes),
			Type:     sc.typ.String,
			Schema:   uint32(sc.schema.Int32),
			Data:     sc.data,
			Metadata: sc.metadata,
		},
		Stream:   sc.stream.String,
		Version:  uint64(sc.version.Int64),
		Position: uint64(sc.position.Int64),
		Time:     sc.recorded.Time,
	}
}
