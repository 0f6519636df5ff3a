package store

import (
	"context"
	"iter"

	"github.com/stratadb/strata/event"
)

// Store is an append-only event log made of named streams.
//
// Stream versions start at 1 (the first event of a stream has version 1, and
// a stream's version is the number of events in it); global positions start at
// 1 and are dense: every position up to Head holds exactly one event.
//
// Reads return iterators: iteration stops at the first error, which is yielded
// once with a zero Record. Breaking out of a loop early is always allowed and
// releases the read's resources.
type Store interface {
	// Append writes events to the end of stream, atomically: all of them or
	// none. expected is checked against the stream's current version; a
	// mismatch fails with an error matching ErrWrongExpectedVersion. Invalid
	// input (a bad stream name or type, no events, one id twice) fails with an
	// error matching event.ErrInvalid, an oversized event with
	// ErrEventTooLarge; a failed append returns a zero AppendResult.
	//
	// Retries are recognised by event ids at the same place: when the events
	// at the place the append names already carry exactly these ids in this
	// order, the original result is returned and nothing is written. The
	// place is versions v+1..v+n for Exactly(v) (and NoStream, v = 0), and the
	// stream's last n events for Any and StreamExists. Ids are not otherwise
	// required to be unique; give every event a fresh id and retry with the
	// same ones.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...event.Event) (AppendResult, error)

	// ReadStream reads the events of one stream in version order (or reverse).
	// A stream with no events yields ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) iter.Seq2[event.Record, error]

	// ReadAll reads the log in position order up to its head; it does not wait
	// for new records (Subscribe does). Records appended while the read runs
	// may or may not be included, but never out of order or with a gap.
	ReadAll(ctx context.Context, opts ReadAllOptions) iter.Seq2[event.Record, error]

	// Subscribe yields every record after opts.After, first from history, then
	// live as appends are acknowledged, with no gap and no duplicate across the
	// hand-off. It ends only when ctx is done (yielding ctx.Err()), the store is
	// closed (ErrClosed), or the loop breaks.
	Subscribe(ctx context.Context, opts SubscribeOptions) iter.Seq2[event.Record, error]

	// Head returns the position of the last acknowledged event (0 when empty).
	Head(ctx context.Context) (uint64, error)

	// Close releases the store. Appends and reads afterwards fail with
	// ErrClosed, and running subscriptions end with ErrClosed. Closing again
	// returns the first Close's result.
	Close() error
}

// AppendResult says where an append landed.
type AppendResult struct {
	// Version is the stream's version after the append: the version of its
	// last event.
	Version uint64
	// FirstPosition and LastPosition are the global positions of the first and
	// last appended events; the events in between have the positions in between.
	FirstPosition uint64
	LastPosition  uint64
}

// Filter selects records by event type and stream name. The zero Filter
// selects everything.
type Filter struct {
	// Types, when not empty, keeps only records whose type is one of these.
	Types []string
	// StreamPrefix, when not empty, keeps only records whose stream name
	// starts with it.
	StreamPrefix string
}

// Match reports whether r passes the filter.
func (f *Filter) Match(r *event.Record) bool {
	if f.StreamPrefix != "" && (len(r.Stream) < len(f.StreamPrefix) || r.Stream[:len(f.StreamPrefix)] != f.StreamPrefix) {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == r.Type {
			return true
		}
	}
	return false
}

// IsZero reports whether f selects everything.
func (f *Filter) IsZero() bool { return len(f.Types) == 0 && f.StreamPrefix == "" }

// ReadStreamOptions controls ReadStream. The zero value reads the whole
// stream forwards.
type ReadStreamOptions struct {
	// From is the first version to yield. Forwards, 0 means the start.
	// Backwards, it is the highest version to yield; 0, or a version past the
	// end, means the end.
	From uint64
	// Backwards reads from newest to oldest.
	Backwards bool
	// Limit caps the number of records; 0 means no limit.
	Limit int
}

// ReadAllOptions controls ReadAll. The zero value reads the whole log.
type ReadAllOptions struct {
	// After skips every record at or before this position: reading after a
	// checkpoint resumes exactly where it left off. 0 reads from the start.
	After uint64
	// Limit caps the number of records yielded (after filtering); 0 means no
	// limit.
	Limit int
	// Filter keeps only matching records.
	Filter Filter
}

// SubscribeOptions controls Subscribe.
type SubscribeOptions struct {
	// After is the position of the last record already seen; the
	// subscription yields everything after it. 0 starts at the beginning.
	After uint64
	// Filter keeps only matching records.
	Filter Filter
}
