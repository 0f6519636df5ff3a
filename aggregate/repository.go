package aggregate

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Options configure a Repository. The zero value is valid.
type Options struct {
	// MaxRetries is how many times Handle loads and decides again after a
	// version conflict (another writer appended to the stream between load
	// and append). Default 3; negative means never retry.
	MaxRetries int
}

// Repository runs commands against the aggregates of one Decider, stored in
// a store.Store, with events encoded and decoded (upcast) by a Registry.
type Repository[S, C, E any] struct {
	store    store.Store
	registry *event.Registry
	decider  Decider[S, C, E]
	retries  int
}

// NewRepository checks the decider and returns a repository.
func NewRepository[S, C, E any](s store.Store, reg *event.Registry, d Decider[S, C, E], opts Options) (*Repository[S, C, E], error) {
	var errs []error
	if s == nil {
		errs = append(errs, errors.New("aggregate: no store"))
	}
	if reg == nil {
		errs = append(errs, errors.New("aggregate: no event registry"))
	}
	if err := event.ValidateStream(d.Category + "-x"); err != nil || d.Category == "" {
		errs = append(errs, fmt.Errorf("aggregate: category %q cannot prefix stream names", d.Category))
	}
	if d.Evolve == nil || d.Decide == nil {
		errs = append(errs, fmt.Errorf("aggregate: decider %q needs Evolve and Decide", d.Category))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	retries := opts.MaxRetries
	if retries == 0 {
		retries = 3
	} else if retries < 0 {
		retries = 0
	}
	return &Repository[S, C, E]{store: s, registry: reg, decider: d, retries: retries}, nil
}

// Result is what a handled command did.
type Result[E any] struct {
	// Events are the events the command caused (none when it changed nothing).
	Events []E
	// Version is the stream's version after the command.
	Version uint64
	// Position is the global position of the last appended event, for
	// reading one's own writes from read models; 0 when nothing was appended.
	Position uint64
}

// Load returns the current state of aggregate id and the stream version it
// reflects (0 for an aggregate with no events).
func (r *Repository[S, C, E]) Load(ctx context.Context, id string) (S, uint64, error) {
	return r.loadStream(ctx, r.decider.Stream(id))
}

func (r *Repository[S, C, E]) loadStream(ctx context.Context, stream string) (S, uint64, error) {
	state := r.decider.Start()
	var version uint64
	for rec, err := range r.store.ReadStream(ctx, stream, store.ReadStreamOptions{}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			return state, 0, nil
		}
		if err != nil {
			return state, 0, fmt.Errorf("aggregate: load %s: %w", stream, err)
		}
		e, err := r.decode(&rec)
		if err != nil {
			return state, 0, err
		}
		state = r.decider.Evolve(state, e)
		version = rec.Version
	}
	return state, version, nil
}

func (r *Repository[S, C, E]) decode(rec *event.Record) (E, error) {
	var zero E
	v, err := r.registry.Decode(&rec.Event)
	if err != nil {
		return zero, fmt.Errorf("aggregate: %s version %d: %w", rec.Stream, rec.Version, err)
	}
	e, ok := v.(E)
	if !ok {
		return zero, fmt.Errorf("aggregate: %s version %d: event %q decodes to %T, which is not an event of %q",
			rec.Stream, rec.Version, rec.Type, v, r.decider.Category)
	}
	return e, nil
}

// Handle decides cmd against the current state of aggregate id and appends
// the resulting events with the version it decided on as the expected
// version. When another writer appended in between, it loads and decides
// again, up to Options.MaxRetries times. A domain error from Decide is
// returned as it is (test it with errors.Is/As).
func (r *Repository[S, C, E]) Handle(ctx context.Context, id string, cmd C) (Result[E], error) {
	stream := r.decider.Stream(id)
	for attempt := 0; ; attempt++ {
		state, version, err := r.loadStream(ctx, stream)
		if err != nil {
			return Result[E]{}, err
		}
		events, err := r.decider.Decide(state, cmd)
		if err != nil {
			return Result[E]{}, err
		}
		if len(events) == 0 {
			return Result[E]{Version: version}, nil
		}
		encoded := make([]event.Event, len(events))
		for i, e := range events {
			if encoded[i], err = r.registry.Encode(e); err != nil {
				return Result[E]{}, fmt.Errorf("aggregate: %s: %w", stream, err)
			}
		}
		res, err := r.store.Append(ctx, stream, store.Exactly(version), encoded...)
		if errors.Is(err, store.ErrWrongExpectedVersion) && attempt < r.retries {
			continue
		}
		if err != nil {
			return Result[E]{}, fmt.Errorf("aggregate: %s: %w", stream, err)
		}
		return Result[E]{Events: events, Version: res.Version, Position: res.LastPosition}, nil
	}
}
