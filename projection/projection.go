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
	// must not commit or roll back. An error fails the whole batch.
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

// Selective is a projection that handles only some event types. A Replay
// reads only those: the log skips the others before anything is decoded,
// upcast or dealt to a partition. (A Runner still reads every event, so
// that its checkpoint keeps up with the log's head.)
type Selective interface {
	EventTypes() []string
}
