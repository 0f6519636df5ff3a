package eventlog

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

var (
	// ErrLocked: the log is open in another process. OpenFollower reads it
	// anyway.
	ErrLocked = errors.New("eventlog: log is open in another process")
	// ErrReadOnly: a Follower cannot append.
	ErrReadOnly = errors.New("eventlog: read-only follower")
)

// followPoll is how often a Follower looks for records another process
// appended: there is no cross-process wake-up to wait on.
const followPoll = 20 * time.Millisecond

// Follower reads a log without opening it: no lock, no recovery, no index,
// nothing written. It is how a second process (strata tail, strata read)
// watches a log that a writer has open. It sees an append once its last
// record is written, which in SyncAlways mode may be a moment before the
// writer has fsynced it. Stream reads scan the whole log: followers are for
// tools, not for serving.
type Follower struct {
	dir    string
	closed chan struct{}
}

var _ store.Store = (*Follower)(nil)

// OpenFollower returns a Follower of the log in dir, which must exist.
func OpenFollower(dir string) (*Follower, error) {
	if _, err := listSegments(dir); err != nil {
		return nil, fmt.Errorf("eventlog: follow %s: %w", dir, err)
	}
	return &Follower{dir: dir, closed: make(chan struct{})}, nil
}

// Close stops the follower's subscriptions.
func (f *Follower) Close() error {
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

func (f *Follower) ended(ctx context.Context) error {
	select {
	case <-f.closed:
		return store.ErrClosed
	default:
		return ctx.Err()
	}
}

// Append always fails: a follower never writes.
func (f *Follower) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	return store.AppendResult{}, ErrReadOnly
}

// followCursor reads whole appends from segment files another process is
// writing. It never yields part of an append. In the last segment it stops
// quietly where the data ends, is being written or is damaged (from outside
// the writer these look alike; the next poll tries again, and strata verify
// tells them apart); in a sealed segment a bad record is corruption.
type followCursor struct {
	f        *Follower
	segs     []*segment
	c        *cursor // nil until the first segment is known
	fromLast bool    // start at the last segment, not the first
}

func (fc *followCursor) close() {
	for _, s := range fc.segs {
		s.r.Close()
	}
}

// refresh picks up new segments and the current sizes of all of them.
func (fc *followCursor) refresh() (*view, error) {
	bases, err := listSegments(fc.f.dir)
	if err != nil {
		return nil, err
	}
	for _, b := range bases[len(fc.segs):] {
		s, err := openSegmentReader(fc.f.dir, b)
		if err != nil {
			return nil, err
		}
		fc.segs = append(fc.segs, s)
	}
	if len(fc.segs) == 0 {
		return nil, nil
	}
	for _, s := range fc.segs {
		fi, err := s.r.Stat()
		if err != nil {
			return nil, err
		}
		s.size = fi.Size()
	}
	last := fc.segs[len(fc.segs)-1]
	return &view{head: math.MaxUint64, segs: fc.segs, end: last.size}, nil
}

// poll yields the complete appends written since the last poll.
func (fc *followCursor) poll(yield func(event.Record) bool) (bool, error) {
	v, err := fc.refresh()
	if err != nil || v == nil {
		return true, err
	}
	if fc.c == nil {
		i := 0
		if fc.fromLast {
			i = len(v.segs) - 1
		}
		fc.c = &cursor{segIdx: i, seg: v.segs[i], next: v.segs[i].base, off: segmentHeaderSize}
	}
	c := fc.c
	c.buf = nil // the file has changed since the last read
	var pending []event.Record
	for {
		start := *c
		for {
			var r event.Record
			_, flags, _, err := c.readFrame(v, &r)
			if err != nil {
				if c.segIdx < len(v.segs)-1 {
					return false, err
				}
				// The end of what is written, or a write in progress: go
				// back to the start of the incomplete append.
				*c = start
				c.buf = nil
				return true, nil
			}
			pending = append(pending, r)
			if flags&flagCommit != 0 {
				break
			}
		}
		for _, r := range pending {
			if !yield(r) {
				return false, nil
			}
		}
		pending = pending[:0]
	}
}

// Subscribe implements store.Store by polling the segment files.
func (f *Follower) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		fc := &followCursor{f: f}
		defer fc.close()
		tick := time.NewTicker(followPoll)
		defer tick.Stop()
		for {
			if err := f.ended(ctx); err != nil {
				yield(event.Record{}, err)
				return
			}
			more, err := fc.poll(func(r event.Record) bool {
				if r.Position <= opts.After || !opts.Filter.Match(&r) {
					return true
				}
				return yield(r, nil)
			})
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			if !more {
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
			case <-f.closed:
			}
		}
	}
}

// ReadAll implements store.Store: what is written now, then stop.
func (f *Follower) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		fc := &followCursor{f: f}
		defer fc.close()
		n := 0
		var ctxErr error
		_, err := fc.poll(func(r event.Record) bool {
			if ctxErr = f.ended(ctx); ctxErr != nil {
				return false
			}
			if r.Position <= opts.After || !opts.Filter.Match(&r) {
				return true
			}
			if !yield(r, nil) {
				return false
			}
			n++
			return opts.Limit <= 0 || n < opts.Limit
		})
		if err == nil {
			err = ctxErr
		}
		if err != nil {
			yield(event.Record{}, err)
		}
	}
}

// ReadStream implements store.Store by scanning the whole log.
func (f *Follower) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		if err := event.ValidateStream(stream); err != nil {
			yield(event.Record{}, err)
			return
		}
		var recs []event.Record
		for r, err := range f.ReadAll(ctx, store.ReadAllOptions{}) {
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			if r.Stream == stream {
				recs = append(recs, r)
			}
		}
		if len(recs) == 0 {
			yield(event.Record{}, fmt.Errorf("%w: %q", store.ErrStreamNotFound, stream))
			return
		}
		from := opts.From
		if opts.Backwards {
			slices.Reverse(recs)
			if from == 0 {
				from = math.MaxUint64
			}
		}
		n := 0
		for _, r := range recs {
			if opts.Backwards && r.Version > from || !opts.Backwards && r.Version < from {
				continue
			}
			if !yield(r, nil) {
				return
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return
			}
		}
	}
}

// Head implements store.Store: the last position of a complete append,
// found by reading the last segment.
func (f *Follower) Head(ctx context.Context) (uint64, error) {
	if err := f.ended(ctx); err != nil {
		return 0, err
	}
	fc := &followCursor{f: f, fromLast: true}
	defer fc.close()
	if _, err := fc.poll(func(event.Record) bool { return true }); err != nil {
		return 0, err
	}
	if fc.c == nil {
		return 0, nil
	}
	return fc.c.next - 1, nil
}

// Stats counts what a follower can see by reading the whole log; Indexed
// is 0, since a follower does not open the index.
func (f *Follower) Stats(ctx context.Context) (Stats, error) {
	if err := f.ended(ctx); err != nil {
		return Stats{}, err
	}
	fc := &followCursor{f: f}
	defer fc.close()
	var s Stats
	_, err := fc.poll(func(r event.Record) bool {
		if r.Version == 1 {
			s.Streams++
		}
		return true
	})
	if err != nil || fc.c == nil {
		return s, err
	}
	s.Head, s.Segments = fc.c.next-1, len(fc.segs)
	for _, seg := range fc.segs[:fc.c.segIdx] {
		s.Bytes += seg.size
	}
	s.Bytes += fc.c.off // the active segment's zero-filled tail is not data
	return s, nil
}
