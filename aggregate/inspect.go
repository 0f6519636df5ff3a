package aggregate

import (
	"context"
	"iter"
	"time"
)

// Inspector is a repository seen without its type parameters, for tools
// (the strata CLI) that show states of any aggregate type as JSON.
type Inspector interface {
	Category() string
	Load(ctx context.Context, id string) (state any, version uint64, err error)
	StateAtVersion(ctx context.Context, id string, v uint64) (state any, version uint64, err error)
	StateAt(ctx context.Context, id string, t time.Time) (state any, version uint64, err error)
	Changes(ctx context.Context, id string, from, to time.Time) iter.Seq2[Change[any], error]
	Samples(ctx context.Context, id string, from, to time.Time, every time.Duration) iter.Seq2[Sample[any], error]
	Snapshot(ctx context.Context, id string) (Snapshot, error)
}

// Inspect returns r as an Inspector.
func (r *Repository[S, C, E]) Inspect() Inspector { return inspector[S, C, E]{r} }

type inspector[S, C, E any] struct{ r *Repository[S, C, E] }

func (i inspector[S, C, E]) Category() string { return i.r.decider.Category }

func (i inspector[S, C, E]) Load(ctx context.Context, id string) (any, uint64, error) {
	return i.r.Load(ctx, id)
}

func (i inspector[S, C, E]) StateAtVersion(ctx context.Context, id string, v uint64) (any, uint64, error) {
	return i.r.StateAtVersion(ctx, id, v)
}

func (i inspector[S, C, E]) StateAt(ctx context.Context, id string, t time.Time) (any, uint64, error) {
	return i.r.StateAt(ctx, id, t)
}

func (i inspector[S, C, E]) Changes(ctx context.Context, id string, from, to time.Time) iter.Seq2[Change[any], error] {
	return func(yield func(Change[any], error) bool) {
		for c, err := range i.r.Changes(ctx, id, from, to) {
			if !yield(Change[any]{From: c.From, To: c.To, Version: c.Version, Position: c.Position, State: c.State}, err) {
				return
			}
		}
	}
}

func (i inspector[S, C, E]) Samples(ctx context.Context, id string, from, to time.Time, every time.Duration) iter.Seq2[Sample[any], error] {
	return func(yield func(Sample[any], error) bool) {
		for s, err := range i.r.Samples(ctx, id, from, to, every) {
			if !yield(Sample[any]{At: s.At, Version: s.Version, State: s.State}, err) {
				return
			}
		}
	}
}

func (i inspector[S, C, E]) Snapshot(ctx context.Context, id string) (Snapshot, error) {
	return i.r.Snapshot(ctx, id)
}
