package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stratadb/strata/event"
)

// EncodingBase64 marks a payload that is not JSON, carried as a base64
// string.
const EncodingBase64 = "base64"

// Record is a recorded event: what reads and subscriptions return, and a
// line of `strata read`. Its field names are also accepted by append, so a
// read can be appended elsewhere.
type Record struct {
	Position         uint64          `json:"position"`
	Stream           string          `json:"stream"`
	Version          uint64          `json:"version"`
	ID               string          `json:"id"`
	Type             string          `json:"type"`
	Schema           uint32          `json:"schema"`
	Time             string          `json:"time"`
	Data             json.RawMessage `json:"data,omitempty"`
	DataEncoding     string          `json:"data_encoding,omitempty"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	MetadataEncoding string          `json:"metadata_encoding,omitempty"`
}

// FromRecord is r on the wire.
func FromRecord(r *event.Record) Record {
	out := Record{
		Position: r.Position,
		Stream:   r.Stream,
		Version:  r.Version,
		ID:       r.ID.String(),
		Type:     r.Type,
		Schema:   max(r.Schema, 1), // the envelope defines 0 as 1; readers should not need to know
		Time:     r.Time.UTC().Format(time.RFC3339Nano),
	}
	out.Data, out.DataEncoding = EncodePayload(r.Data)
	out.Metadata, out.MetadataEncoding = EncodePayload(r.Metadata)
	return out
}

// ToRecord reverses FromRecord.
func (r *Record) ToRecord() (event.Record, error) {
	var out event.Record
	id, err := event.ParseID(r.ID)
	if err != nil {
		return out, fmt.Errorf("api: record at %d: %w", r.Position, err)
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return out, fmt.Errorf("api: record at %d: time: %w", r.Position, err)
	}
	out.ID, out.Type, out.Schema = id, r.Type, r.Schema
	out.Stream, out.Version, out.Position, out.Time = r.Stream, r.Version, r.Position, t
	if out.Data, err = DecodePayload("data", r.Data, r.DataEncoding); err != nil {
		return out, err
	}
	if out.Metadata, err = DecodePayload("metadata", r.Metadata, r.MetadataEncoding); err != nil {
		return out, err
	}
	return out, nil
}

// EncodePayload embeds a JSON payload as it is and anything else as a
// base64 string, so every stored byte survives the trip through JSON. An
// empty payload is left out.
func EncodePayload(b []byte) (json.RawMessage, string) {
	switch {
	case len(b) == 0:
		return nil, ""
	case json.Valid(b):
		return b, ""
	}
	return json.RawMessage(`"` + base64.StdEncoding.EncodeToString(b) + `"`), EncodingBase64
}

// DecodePayload reverses EncodePayload: raw JSON is stored as its bytes,
// a base64 string with encoding "base64" as the bytes it encodes.
func DecodePayload(field string, raw json.RawMessage, encoding string) ([]byte, error) {
	switch encoding {
	case "":
		if len(raw) == 0 {
			return nil, nil
		}
		return []byte(raw), nil
	case EncodingBase64:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%q with %s_encoding base64 must be a string", field, field)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", field, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s_encoding %q: want base64 or nothing", field, encoding)
}

// Event is one event to append.
type Event struct {
	// ID makes a retry safe: an append whose ids were written at the same
	// place returns the first result. Empty: a fresh id.
	ID               string          `json:"id,omitempty" doc:"a UUID; a retried append with the same ids returns the first result"`
	Type             string          `json:"type" minLength:"1" maxLength:"255"`
	Schema           uint32          `json:"schema,omitempty" doc:"the data's schema version (default 1)"`
	Data             json.RawMessage `json:"data,omitempty"`
	DataEncoding     string          `json:"data_encoding,omitempty" enum:"base64" doc:"base64: data is a base64 string of bytes that are not JSON"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	MetadataEncoding string          `json:"metadata_encoding,omitempty" enum:"base64"`
}

// ToEvent checks e as the log would, so that a bad event fails before
// anything is appended.
func (e *Event) ToEvent() (event.Event, error) {
	ev := event.Event{Type: e.Type, Schema: e.Schema}
	if err := event.ValidateType(ev.Type); err != nil {
		return ev, err
	}
	if e.ID != "" {
		id, err := event.ParseID(e.ID)
		if err != nil {
			return ev, fmt.Errorf(`"id": %w`, err)
		}
		ev.ID = id
	}
	var err error
	if ev.Data, err = DecodePayload("data", e.Data, e.DataEncoding); err != nil {
		return ev, fmt.Errorf("%w: %w", event.ErrInvalid, err)
	}
	if ev.Metadata, err = DecodePayload("metadata", e.Metadata, e.MetadataEncoding); err != nil {
		return ev, fmt.Errorf("%w: %w", event.ErrInvalid, err)
	}
	return ev, nil
}

// FromEvent is e as an append carries it.
func FromEvent(e *event.Event) Event {
	out := Event{Type: e.Type, Schema: e.Schema}
	if !e.ID.IsZero() {
		out.ID = e.ID.String()
	}
	out.Data, out.DataEncoding = EncodePayload(e.Data)
	out.Metadata, out.MetadataEncoding = EncodePayload(e.Metadata)
	return out
}

// AppendRequest is the body of POST /v1/streams/{stream}: the events are
// appended atomically, all or none.
type AppendRequest struct {
	Events []Event `json:"events" minItems:"1"`
}

// AppendResult is what an append returns.
type AppendResult struct {
	Version       uint64 `json:"version" doc:"the stream's version after the append"`
	FirstPosition uint64 `json:"first_position"`
	LastPosition  uint64 `json:"last_position"`
}

// Records is a page of a read.
type Records struct {
	Records []Record `json:"records"`
	// Next is where the next page starts (the after or from parameter), 0
	// when the read reached the end.
	Next uint64 `json:"next,omitempty"`
}
