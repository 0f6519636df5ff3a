package projection

import (
	"context"
	"database/sql"

	"github.com/stratadb/strata/event"
)

// Projection is a read model written in Go.
type Projection interface {
	// Name identifies the projection and its checkpoint.
	Name() string
	// Setup creates the projection's tables; it runs at every start, so it
	// must be idempotent (CREATE TABLE IF NOT EXISTS …).
	Setup(ctx context.Context, tx *sql.Tx) error
	// Apply writes the effects of a batch of events (in position order,
	// already upcast) in tx. The runner commits tx with the checkpoint; Apply
	// must not commit or roll back, nor keep batch after it returns (the
	// runtime reuses it). An error fails the whole batch.
	Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error
}

// PreparingProjection is a Projection with per-event work to do before
// Apply (decoding, typically). The runner calls Prepare on its reading
// goroutine, as events arrive, so that this work overlaps with applying the
// previous batch instead of adding to it; then ApplyPrepared with the
// results, index for index. An error from Prepare fails that event like an
// error from Apply.
type PreparingProjection interface {
	Projection
	Prepare(r *event.Record) (any, error)
	ApplyPrepared(ctx context.Context, tx *sql.Tx, batch []event.Record, prepared []any) error
}

// ApplyPreparing prepares each event of batch and applies the results: the
// Apply of a PreparingProjection whose Apply is nothing more.
func ApplyPreparing(ctx context.Context, tx *sql.Tx, p PreparingProjection, batch []event.Record) error {
	prepared := make([]any, len(batch))
	for i := range batch {
		var err error
		if prepared[i], err = p.Prepare(&batch[i]); err != nil {
			return err
		}
	}
	return p.ApplyPrepared(ctx, tx, batch, prepared)
}

// Portable is a projection spelled differently for each database its read
// model can live in. A Runner or a Replay writing into PostgreSQL runs
// For(DatabasePostgres) instead of the projection itself. (A type that
// wraps a Portable projection by embedding it inherits For, which returns
// the inner projection: such a wrapper must define For itself.)
type Portable interface {
	For(database string) Projection
}

// DatabasePostgres names PostgreSQL to Portable.For.
const DatabasePostgres = "postgres"

// forDB returns the variant of p for db's database.
func forDB(p Projection, db *sql.DB) Projection {
	if pp, ok := p.(Portable); ok && isPostgres(db) {
		return pp.For(DatabasePostgres)
	}
	return p
}

// Selective is a projection that handles only some event types. A Replay
// reads only those: the log skips the others before anything is decoded,
// upcast or dealt to a partition. (A Runner still reads every event, so
// that its checkpoint keeps up with the log's head.)
type Selective interface {
	EventTypes() []string
}

// SideEffecter is a projection with effects beyond its tables: a webhook
// or an e-mail per event, say. A Runner calls Effect for each event of a
// batch after the batch commits (so at most once per event: a crash between
// the commit and the effect loses the effect), unless it runs Quiet. A
// Replay never calls it, nor does a Manager's version while it builds: a
// rebuild never re-sends old notifications.
type SideEffecter interface {
	Effect(ctx context.Context, r event.Record) error
}

// Definer is a projection whose definition can change. A Manager that finds
// the serving version built from another Definition builds a new version
// beside it and switches to it. Declarative projections define themselves
// by their spec; a Go projection can return a version string it bumps when
// its meaning changes.
type Definer interface {
	Definition() string
}

func definitionOf(p Projection) string {
	if d, ok := p.(Definer); ok {
		return d.Definition()
	}
	return ""
}

// Folding is a projection that can fold events into rows in memory and
// write them in one go. A Replay uses it to apply millions of events per
// transaction while holding only the folded rows, not the events: the
// rows are what it writes, and writing each touched row once per
// transaction, rarely, is what makes a rebuild fast. A Fold sees the events
// of one partition in log order, already upcast.
type Folding interface {
	Projection
	NewFold() Fold
}

// Fold is a Folding projection's rows in the making.
type Fold interface {
	// Add folds one event in.
	Add(r *event.Record) error
	// Write writes the folded rows in tx (the runtime commits it with the
	// checkpoint) and empties the fold.
	Write(ctx context.Context, tx *sql.Tx) error
}
