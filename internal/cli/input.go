package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/event"
)

// inputEvent is one event of append's input. The record fields of read's
// output (position, stream, version, time) are accepted and ignored so that
// read output can be appended elsewhere; any other unknown field is an
// error, because a misspelt "metadata" silently dropped is worse.
type inputEvent struct {
	ID               string          `json:"id"`
	Type             *string         `json:"type"`
	Schema           json.Number     `json:"schema"`
	Data             json.RawMessage `json:"data"`
	DataEncoding     string          `json:"data_encoding"`
	Metadata         json.RawMessage `json:"metadata"`
	MetadataEncoding string          `json:"metadata_encoding"`

	Position json.RawMessage `json:"position"`
	Stream   json.RawMessage `json:"stream"`
	Version  json.RawMessage `json:"version"`
	Time     json.RawMessage `json:"time"`
}

// parseEvents reads append's input: either one JSON array of event objects
// or event objects one after another (JSON lines; an object may also span
// lines). Errors name the line, and for arrays the index, of the bad event.
func parseEvents(r io.Reader) ([]event.Event, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	start := skipSpace(data, 0)
	if start == len(data) {
		return nil, errors.New("input holds no events")
	}
	switch data[start] {
	case '[':
		return parseArray(data)
	case '{':
		return parseSequence(data, start)
	}
	return nil, fmt.Errorf("line %d: want a JSON array of events or one JSON object per line", lineOf(data, start))
}

func parseArray(data []byte) ([]event.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the '[' parseEvents saw
		return nil, err
	}
	var events []event.Event
	for i := 0; dec.More(); i++ {
		start := skipSpaceAndComma(data, int(dec.InputOffset()))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(data, 0, err)
		}
		ev, err := parseEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("event at index %d (line %d): %w", i, lineOf(data, start), err)
		}
		events = append(events, ev)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, syntaxError(data, 0, err)
	}
	if rest := skipSpace(data, int(dec.InputOffset())); rest < len(data) {
		return nil, fmt.Errorf("line %d: unexpected data after the array", lineOf(data, rest))
	}
	if len(events) == 0 {
		return nil, errors.New("input holds no events")
	}
	return events, nil
}

func parseSequence(data []byte, start int) ([]event.Event, error) {
	var events []event.Event
	for start < len(data) {
		dec := json.NewDecoder(bytes.NewReader(data[start:]))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(data, start, err)
		}
		ev, err := parseEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineOf(data, start), err)
		}
		events = append(events, ev)
		start = skipSpace(data, start+int(dec.InputOffset()))
	}
	return events, nil
}

// parseEvent turns one JSON value into an event, checking what the log
// would reject so that a bad event fails before anything is appended.
func parseEvent(raw json.RawMessage) (event.Event, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return event.Event{}, errors.New("an event must be a JSON object")
	}
	var in inputEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return event.Event{}, err
	}
	var ev event.Event
	if in.Type == nil {
		return ev, errors.New(`missing "type"`)
	}
	ev.Type = *in.Type
	if err := event.ValidateType(ev.Type); err != nil {
		return ev, err
	}
	if in.ID != "" {
		id, err := event.ParseID(in.ID)
		if err != nil {
			return ev, fmt.Errorf(`"id": %w`, err)
		}
		ev.ID = id
	}
	if in.Schema != "" {
		s, err := strconv.ParseUint(string(in.Schema), 10, 32)
		if err != nil {
			return ev, fmt.Errorf(`"schema" %s: want a whole number from 0 to %d`, in.Schema, uint32(1<<32-1))
		}
		ev.Schema = uint32(s)
	}
	var err error
	if ev.Data, err = api.DecodePayload("data", in.Data, in.DataEncoding); err != nil {
		return ev, err
	}
	if ev.Metadata, err = api.DecodePayload("metadata", in.Metadata, in.MetadataEncoding); err != nil {
		return ev, err
	}
	return ev, nil
}

// syntaxError locates a JSON error in the value starting at start (0 for
// an array: the whole input is one value). The streaming decoder's offsets
// are not exact, so the value is scanned again with json.Unmarshal, whose
// offsets are.
func syntaxError(data []byte, start int, err error) error {
	var v json.RawMessage
	var se *json.SyntaxError
	if !errors.As(json.Unmarshal(data[start:], &v), &se) {
		return fmt.Errorf("line %d: invalid JSON: %v", lineOf(data, start), err)
	}
	if int(se.Offset) >= len(data)-start {
		return fmt.Errorf("invalid JSON: input ends inside the value starting at line %d", lineOf(data, start))
	}
	line, col := lineCol(data, start+int(se.Offset)-1) // Offset counts the bad byte
	return fmt.Errorf("line %d, column %d: invalid JSON: %v", line, col, se)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func skipSpaceAndComma(data []byte, i int) int {
	for i < len(data) && (isSpace(data[i]) || data[i] == ',') {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func lineOf(data []byte, at int) int {
	line, _ := lineCol(data, at)
	return line
}

// lineCol gives the 1-based line and column (in bytes) of data[at].
func lineCol(data []byte, at int) (line, col int) {
	at = min(at, len(data))
	nl := bytes.LastIndexByte(data[:at], '\n')
	return bytes.Count(data[:at], []byte{'\n'}) + 1, at - nl
}
