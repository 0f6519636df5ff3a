// Package alerts owns the alerts stream and its delivery: every denied or
// reviewed transaction, every rule with action alert that fired, and every
// amendment becomes an alert.raised event in the stream "alerts", derived
// from the decisions in the log; sinks deliver the stream, at least once,
// to a webhook (with retries and backoff) or a NATS subject, each alert with
// an idempotency key (its event id) so a receiver can drop repeats.
package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// The alerts stream and its event type.
const (
	Stream    = "alerts"
	TypeAlert = "alert.raised"
)

// Alert is the data of an alert.raised event.
type Alert struct {
	// Kind is deny, review, alert (a rule that only alerts fired on an
	// approved transaction) or amendment.
	Kind        string        `json:"kind"`
	Transaction event.ID      `json:"transaction_id"`
	User        string        `json:"user_id"`
	At          time.Time     `json:"at"`
	Outcome     rules.Action  `json:"outcome"`
	Previous    rules.Action  `json:"previous,omitempty"` // amendments: the outcome before
	Fired       []rules.Fired `json:"fired,omitempty"`
	// Source is the position of the decision or amendment it comes from.
	Source uint64 `json:"source"`
}

// alertOf is the alert a decision or amendment raises, if any.
func alertOf(rec *event.Record) (Alert, bool, error) {
	switch rec.Type {
	case rules.TypeDecision:
		var d rules.Decision
		if err := json.Unmarshal(rec.Data, &d); err != nil {
			return Alert{}, false, fmt.Errorf("alerts: decision at %d: %w", rec.Position, err)
		}
		if len(d.Fired) == 0 {
			return Alert{}, false, nil
		}
		kind := string(d.Outcome)
		if d.Outcome == rules.Approve {
			kind = string(rules.Alert)
		}
		return Alert{Kind: kind, Transaction: d.Transaction, User: d.User, At: d.At, Outcome: d.Outcome, Fired: d.Fired, Source: rec.Position}, true, nil
	case rules.TypeAmendment:
		var am rules.Amendment
		if err := json.Unmarshal(rec.Data, &am); err != nil {
			return Alert{}, false, fmt.Errorf("alerts: amendment at %d: %w", rec.Position, err)
		}
		return Alert{Kind: "amendment", Transaction: am.Transaction, User: am.User, At: am.At, Outcome: am.Outcome, Previous: am.Previous, Fired: am.Fired, Source: rec.Position}, true, nil
	}
	return Alert{}, false, nil
}

// alertID derives an alert's id from its source event's, so that deriving
// again after a crash appends the same event, recognised as a retry.
func alertID(source event.ID) event.ID {
	id := source
	id[len(id)-2] ^= 0xa1
	return id
}

// DeriveOptions controls Derive.
type DeriveOptions struct {
	// Follow keeps deriving as decisions are recorded, until ctx is done;
	// otherwise Derive returns once it has caught up with the log's head.
	Follow bool
	// Raised is called with each alert appended (for a caller that shows
	// them as they come).
	Raised func(Alert)
}

// Derive appends the alerts the log's decisions and amendments raise and
// the alerts stream does not have yet. The stream is its own checkpoint:
// it resumes after the source of the last alert, and appends with the
// stream's exact version, so two processes deriving at once cannot both
// append an alert (one fails with store.ErrWrongExpectedVersion).
func Derive(ctx context.Context, st store.Store, opts DeriveOptions) error {
	var lastAlert Alert
	version, err := last(ctx, st, Stream, &lastAlert)
	if err != nil {
		return err
	}
	filter := store.Filter{Types: []string{rules.TypeDecision, rules.TypeAmendment}, StreamPrefix: "txn-"}
	for rec, err := range records(ctx, st, lastAlert.Source, filter, opts.Follow) {
		if err != nil {
			return fmt.Errorf("alerts: read decisions: %w", err)
		}
		a, ok, err := alertOf(&rec)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		if err := appendAt(ctx, st, Stream, &version, event.Event{ID: alertID(rec.ID), Type: TypeAlert, Data: data}); err != nil {
			return err
		}
		if opts.Raised != nil {
			opts.Raised(a)
		}
	}
	return nil
}

// last decodes the newest event of stream into v and returns the stream's
// version (0, v untouched, when the stream has none): the derived stream
// and each delivery's checkpoint resume from their last event.
func last(ctx context.Context, st store.Store, stream string, v any) (uint64, error) {
	for rec, err := range st.ReadStream(ctx, stream, store.ReadStreamOptions{Backwards: true, Limit: 1}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("alerts: read %s: %w", stream, err)
		}
		if err := json.Unmarshal(rec.Data, v); err != nil {
			return 0, fmt.Errorf("alerts: the last event of %s: %w", stream, err)
		}
		return rec.Version, nil
	}
	return 0, nil
}

// records reads the log after a position: up to its head, or on as events
// are recorded (follow).
func records(ctx context.Context, st store.Store, after uint64, filter store.Filter, follow bool) iter.Seq2[event.Record, error] {
	if follow {
		return st.Subscribe(ctx, store.SubscribeOptions{After: after, Filter: filter})
	}
	return st.ReadAll(ctx, store.ReadAllOptions{After: after, Filter: filter})
}

// appendAt appends ev to stream at exactly the version *v (a new stream for
// 0) and moves *v on: a second writer fails instead of interleaving.
func appendAt(ctx context.Context, st store.Store, stream string, v *uint64, ev event.Event) error {
	expected := store.Exactly(*v)
	if *v == 0 {
		expected = store.NoStream
	}
	res, err := st.Append(ctx, stream, expected, ev)
	if err != nil {
		return fmt.Errorf("alerts: append to %s: %w", stream, err)
	}
	*v = res.Version
	return nil
}
