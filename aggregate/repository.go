package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Options configure a Repository. The zero value is valid.
type Options struct {
	// MaxRetries is how many times Handle loads and decides again after a
	// version conflict (another writer appended to the stream between load
	// and append). Default 3; negative means never retry.
	MaxRetries int
	// Snapshots, when set, is where states are saved and loaded from.
	// Default: none; every load replays the stream.
	Snapshots SnapshotStore
	// SnapshotEvery takes a snapshot whenever a command carries a stream's
	// version across a multiple of it. 0 (the default) takes snapshots only
	// on demand (Repository.Snapshot).
	SnapshotEvery uint64
	// Logger receives snapshot failures, which never fail a command.
	// Default: discard.
	Logger *slog.Logger
}

// Repository runs commands against the aggregates of one Decider, stored in
// a store.Store, with events encoded and decoded (upcast) by a Registry.
type Repository[S, C, E any] struct {
	store       store.Store
	registry    *event.Registry
	decider     Decider[S, C, E]
	retries     int
	snapshots   SnapshotStore
	every       uint64
	logger      *slog.Logger
	fingerprint string
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
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Repository[S, C, E]{
		store: s, registry: reg, decider: d, retries: retries,
		snapshots: opts.Snapshots, every: opts.SnapshotEvery, logger: logger,
		fingerprint: fingerprint(&d),
	}, nil
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
	l, err := r.load(ctx, r.decider.Stream(id))
	if err == nil && l.staleSnapshot && l.version > 0 {
		r.saveSnapshot(ctx, r.decider.Stream(id), l)
	}
	return l.state, l.version, err
}

// loaded is a state and where in its stream it stands.
type loaded[S any] struct {
	state    S
	version  uint64 // stream version the state reflects
	position uint64 // global position of that version's event
	// staleSnapshot: a snapshot exists but was written by other code (or
	// no longer matches the log) and was ignored; it should be replaced.
	staleSnapshot bool
	fromSnapshot  bool
}

// load folds the stream, starting from its snapshot when there is a usable one.
func (r *Repository[S, C, E]) load(ctx context.Context, stream string) (loaded[S], error) {
	l := loaded[S]{state: r.decider.Start()}
	from := uint64(0)
	if r.snapshots != nil {
		snap, ok, err := r.snapshots.LoadSnapshot(ctx, stream)
		if err != nil {
			return l, err
		}
		if ok && snap.Fingerprint == r.fingerprint {
			var state S
			if err := json.Unmarshal(snap.State, &state); err == nil {
				l.state, l.version, l.position, l.fromSnapshot = state, snap.Version, snap.Position, true
				from = snap.Version // read the snapshot's own event again to check it
			} else {
				l.staleSnapshot = true
			}
		} else if ok {
			l.staleSnapshot = true
		}
	}
	l, ok, err := r.foldFrom(ctx, stream, l, from, nil)
	if err == nil && !ok {
		// The snapshot describes another log (one rebuilt since, say):
		// never misread it; replay from the start.
		l, _, err = r.foldFrom(ctx, stream, loaded[S]{state: r.decider.Start()}, 0, nil)
		l.staleSnapshot = true
	}
	return l, err
}

// foldFrom folds the stream's events from version from on into l, until
// stop (when not nil) says an event is past the point wanted. When l comes
// from a snapshot, the first event read is the snapshot's own and must be
// at the position the snapshot recorded: ok is false when it is not.
func (r *Repository[S, C, E]) foldFrom(ctx context.Context, stream string, l loaded[S], from uint64, stop func(*event.Record) bool) (_ loaded[S], ok bool, err error) {
	checked := !l.fromSnapshot
	for rec, err := range r.store.ReadStream(ctx, stream, store.ReadStreamOptions{From: from}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return l, false, fmt.Errorf("aggregate: load %s: %w", stream, err)
		}
		if !checked {
			if rec.Version != from || rec.Position != l.position {
				return l, false, nil
			}
			checked = true
			continue
		}
		if stop != nil && stop(&rec) {
			break
		}
		e, err := r.decode(&rec)
		if err != nil {
			return l, false, err
		}
		l.state = r.decider.Evolve(l.state, e)
		l.version, l.position = rec.Version, rec.Position
	}
	return l, checked, nil
}

// Snapshot saves the current state of aggregate id as its snapshot, on
// demand, and returns it.
func (r *Repository[S, C, E]) Snapshot(ctx context.Context, id string) (Snapshot, error) {
	if r.snapshots == nil {
		return Snapshot{}, errors.New("aggregate: the repository has no snapshot store")
	}
	stream := r.decider.Stream(id)
	l, err := r.load(ctx, stream)
	if err != nil {
		return Snapshot{}, err
	}
	if l.version == 0 {
		return Snapshot{}, fmt.Errorf("aggregate: %s: %w", stream, store.ErrStreamNotFound)
	}
	return r.newSnapshot(stream, l)
}

func (r *Repository[S, C, E]) newSnapshot(stream string, l loaded[S]) (Snapshot, error) {
	state, err := json.Marshal(l.state)
	if err != nil {
		return Snapshot{}, fmt.Errorf("aggregate: encode state of %s: %w", stream, err)
	}
	s := Snapshot{Stream: stream, Version: l.version, Position: l.position, Time: time.Now().UTC(),
		Fingerprint: r.fingerprint, State: state}
	return s, r.snapshots.SaveSnapshot(context.Background(), s)
}

// saveSnapshot saves a policy snapshot; failures are logged, not returned:
// the command it follows has succeeded.
func (r *Repository[S, C, E]) saveSnapshot(ctx context.Context, stream string, l loaded[S]) {
	if _, err := r.newSnapshot(stream, l); err != nil {
		r.logger.Warn("aggregate: snapshot failed", "stream", stream, "version", l.version, "err", err)
	}
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

// Stream is the stream of aggregate id.
func (r *Repository[S, C, E]) Stream(id string) string { return r.decider.Stream(id) }

// ErrRejected wraps every error a decider returns: the command was refused
// by the domain's rules (insufficient funds), as opposed to failing (the
// store). The decider's own error stays reachable with errors.Is.
var ErrRejected = errors.New("command rejected")

// Handle decides cmd against the current state of aggregate id and appends
// the resulting events with the version it decided on as the expected
// version. When another writer appended in between, it loads and decides
// again, up to Options.MaxRetries times. A domain error from Decide is
// returned wrapped in ErrRejected (test for either with errors.Is/As).
func (r *Repository[S, C, E]) Handle(ctx context.Context, id string, cmd C) (Result[E], error) {
	stream := r.decider.Stream(id)
	for attempt := 0; ; attempt++ {
		l, err := r.load(ctx, stream)
		if err != nil {
			return Result[E]{}, err
		}
		events, err := r.decider.Decide(l.state, cmd)
		if err != nil {
			return Result[E]{}, fmt.Errorf("%w: %w", ErrRejected, err)
		}
		if len(events) == 0 {
			return Result[E]{Version: l.version}, nil
		}
		encoded := make([]event.Event, len(events))
		for i, e := range events {
			if encoded[i], err = r.registry.Encode(e); err != nil {
				return Result[E]{}, fmt.Errorf("aggregate: %s: %w", stream, err)
			}
		}
		res, err := r.store.Append(ctx, stream, store.Exactly(l.version), encoded...)
		if errors.Is(err, store.ErrWrongExpectedVersion) && attempt < r.retries {
			continue
		}
		if err != nil {
			return Result[E]{}, fmt.Errorf("aggregate: %s: %w", stream, err)
		}
		if r.snapshots != nil && (l.staleSnapshot || r.every > 0 && l.version/r.every != res.Version/r.every) {
			after := loaded[S]{state: r.decider.Fold(l.state, events...), version: res.Version, position: res.LastPosition}
			r.saveSnapshot(ctx, stream, after)
		}
		return Result[E]{Events: events, Version: res.Version, Position: res.LastPosition}, nil
	}
}
