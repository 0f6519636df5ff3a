package event

import (
	"time"
)

// Event is what a caller appends. Data and Metadata are opaque to the log
// (JSON by convention); Type and Schema tell readers how to decode Data.
type Event struct {
	// ID identifies the event for idempotent appends. A zero ID is replaced
	// by a fresh one when the event is appended.
	ID ID
	// Type is the event's explicit, stable name ("order.placed").
	Type string
	// Schema is the version of Data's shape for this Type, stored and
	// returned as given (0 for an event type that has no versions yet).
	Schema uint32
	// Data is the payload.
	Data []byte
	// Metadata is caller-defined context (correlation ids, event time, ...).
	Metadata []byte
}

// Record is an event as stored: the event plus the stream it belongs to, its
// version within that stream (1 for the first event), its dense global
// position (1 for the first event in the log) and the time the log stored it.
//
// Records returned by a store may share backing memory with other records
// from the same read; they are never modified afterwards, so retaining them is
// safe, but callers must not modify Data or Metadata in place.
type Record struct {
	Event
	Stream   string
	Version  uint64
	Position uint64
	Time     time.Time
}

// Size is the number of bytes of caller-supplied content in e; it is what a
// store's maximum event size limits.
func (e *Event) Size() int {
	return len(e.Type) + len(e.Data) + len(e.Metadata)
}
