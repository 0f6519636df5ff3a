package aggregate

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Time travel: any past state is a fold of a prefix of the stream. Times are
// record times (when the log stored an event).

// StateAtVersion returns the state of aggregate id after its event at
// version v (the initial state for v = 0), and the version it reflects
// (lower than v when the stream is shorter).
func (r *Repository[S, C, E]) StateAtVersion(ctx context.Context, id string, v uint64) (S, uint64, error) {
	return r.foldUntil(ctx, r.decider.Stream(id), func(rec *event.Record) bool { return rec.Version > v })
}

// StateAt returns the state of aggregate id as of time t (after every event
// recorded at or before t) and the version it reflects.
func (r *Repository[S, C, E]) StateAt(ctx context.Context, id string, t time.Time) (S, uint64, error) {
	return r.foldUntil(ctx, r.decider.Stream(id), func(rec *event.Record) bool { return rec.Time.After(t) })
}

// foldUntil folds the stream from the start until stop says an event is
// past the point wanted.
func (r *Repository[S, C, E]) foldUntil(ctx context.Context, stream string, stop func(*event.Record) bool) (S, uint64, error) {
	l, _, err := r.foldFrom(ctx, stream, loaded[S]{state: r.decider.Start()}, 0, stop)
	return l.state, l.version, err
}

// Change is one state of an aggregate and the time it held: from the
// record time of the event that produced it until the next event's (To is
// zero while it still holds).
type Change[S any] struct {
	From, To time.Time
	Version  uint64
	Position uint64
	State    S
}

// Changes yields every state of aggregate id that held at some moment in
// [from, to): the state in force at from (if any event came before), then
// one per event recorded in the range. One row per change is the compact
// answer to "the balance at every second of seven years".
func (r *Repository[S, C, E]) Changes(ctx context.Context, id string, from, to time.Time) iter.Seq2[Change[S], error] {
	return func(yield func(Change[S], error) bool) {
		var cur Change[S]
		cur.State = r.decider.Start()
		have := false // cur holds a state that began before the next event
		for rec, err := range r.store.ReadStream(ctx, r.decider.Stream(id), store.ReadStreamOptions{}) {
			if errors.Is(err, store.ErrStreamNotFound) {
				return
			}
			if err != nil {
				yield(Change[S]{}, fmt.Errorf("aggregate: %s: %w", r.decider.Stream(id), err))
				return
			}
			if !rec.Time.Before(to) {
				break
			}
			e, err := r.decode(&rec)
			if err != nil {
				yield(Change[S]{}, err)
				return
			}
			if have && rec.Time.After(from) {
				cur.To = rec.Time
				if !yield(cur, nil) {
					return
				}
			}
			cur = Change[S]{From: rec.Time, Version: rec.Version, Position: rec.Position, State: r.decider.Evolve(cur.State, e)}
			have = true
		}
		if have {
			yield(cur, nil)
		}
	}
}

// Sample is the state of an aggregate at one instant.
type Sample[S any] struct {
	At      time.Time
	Version uint64
	State   S
}

// Samples yields the state of aggregate id at from, from+every, … up to
// and excluding to, in one pass over the events: the state is folded once
// and repeated for each instant it covers, never refolded per sample.
func (r *Repository[S, C, E]) Samples(ctx context.Context, id string, from, to time.Time, every time.Duration) iter.Seq2[Sample[S], error] {
	return func(yield func(Sample[S], error) bool) {
		if every <= 0 {
			yield(Sample[S]{}, errors.New("aggregate: sample step must be positive"))
			return
		}
		var cur Sample[S]
		cur.State = r.decider.Start()
		at := from
		emitUntil := func(limit time.Time, inclusive bool) bool {
			for at.Before(to) && (at.Before(limit) || inclusive && at.Equal(limit)) {
				cur.At = at
				if !yield(cur, nil) {
					return false
				}
				at = at.Add(every)
			}
			return true
		}
		for c, err := range r.Changes(ctx, id, from, to) {
			if err != nil {
				yield(Sample[S]{}, err)
				return
			}
			// Instants before this change still see the previous state.
			if !emitUntil(c.From, false) {
				return
			}
			cur.Version, cur.State = c.Version, c.State
		}
		emitUntil(to, false)
	}
}
