package store

import (
	"fmt"

	"github.com/stratadb/strata/event"
)

// CheckAppend checks an append as every store does before anything is
// written: the stream's name, at least one event, each event valid and at
// most maxEventSize bytes (0: no limit, ErrEventTooLarge beyond), and no
// id given twice (event.ErrInvalid: such an append could never be told
// apart from a retry). Backends and clients call it first, so that bad
// input fails the same way, with the same errors, everywhere.
func CheckAppend(stream string, events []event.Event, maxEventSize int) error {
	if err := event.ValidateStream(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: append to %q has no events", event.ErrInvalid, stream)
	}
	for i := range events {
		e := &events[i]
		if err := e.Validate(); err != nil {
			return fmt.Errorf("event %d of %d: %w", i, len(events), err)
		}
		if n := e.Size(); maxEventSize > 0 && n > maxEventSize {
			return fmt.Errorf("%w: event %d (type %q) is %d bytes, the limit is %d", ErrEventTooLarge, i, e.Type, n, maxEventSize)
		}
	}
	return checkDistinct(events)
}

// checkDistinct refuses two events with the same (given) id.
func checkDistinct(events []event.Event) error {
	if len(events) < 2 {
		return nil
	}
	if len(events) <= 16 {
		for i := range events {
			if events[i].ID.IsZero() {
				continue
			}
			for j := i + 1; j < len(events); j++ {
				if events[i].ID == events[j].ID {
					return fmt.Errorf("%w: events %d and %d have the same id %s", event.ErrInvalid, i, j, events[i].ID)
				}
			}
		}
		return nil
	}
	seen := make(map[event.ID]int, len(events))
	for i := range events {
		id := events[i].ID
		if id.IsZero() {
			continue
		}
		if j, ok := seen[id]; ok {
			return fmt.Errorf("%w: events %d and %d have the same id %s", event.ErrInvalid, j, i, id)
		}
		seen[id] = i
	}
	return nil
}
