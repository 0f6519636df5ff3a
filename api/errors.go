package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// Code is an error's stable name: clients act on it, messages may change.
type Code string

// The error catalog. docs/server.md lists it with what each means.
const (
	CodeBadRequest           Code = "bad_request"            // a parameter or header is malformed
	CodeBadJSON              Code = "bad_json"               // the body is not JSON
	CodeInvalidBody          Code = "invalid_body"           // the body is JSON but not what the operation takes
	CodeBodyTooLarge         Code = "body_too_large"         // over the server's request size limit
	CodeInvalidStream        Code = "invalid_stream_name"    // a stream name the log refuses
	CodeInvalidEvent         Code = "invalid_event"          // an event the log refuses (type, id, payload)
	CodeEventTooLarge        Code = "event_too_large"        // one event over the log's limit
	CodeWrongExpectedVersion Code = "wrong_expected_version" // optimistic concurrency: the stream moved on
	CodeStreamNotFound       Code = "stream_not_found"
	CodeConflict             Code = "conflict"  // the resource exists with another definition
	CodeNotFound             Code = "not_found" // no such route or resource
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeUnauthorized         Code = "unauthorized" // no valid token
	CodeForbidden            Code = "forbidden"    // the token lacks the scope or stream prefix
	CodeInvalidTransaction   Code = "invalid_transaction"
	CodeCommandRejected      Code = "command_rejected" // a decider refused the command (insufficient funds)
	CodeInvalidRule          Code = "invalid_rule"
	CodeRuleNotFound         Code = "rule_not_found"
	CodeProjectionBuilding   Code = "projection_building" // its first version is still building: see building, Retry-After
	CodeProjectionPaused     Code = "projection_paused"   // a rebuild needs it running
	CodeNotCaughtUp          Code = "not_caught_up"       // the read models did not reach min_position in time: Retry-After
	CodeUnavailable          Code = "unavailable"         // shutting down, or the store is closed
	CodeCorrupt              Code = "corrupt"             // the log found damaged data
	CodeInternal             Code = "internal"
)

// Status is the HTTP status each code is sent with.
var Status = map[Code]int{
	CodeBadRequest:           http.StatusBadRequest,
	CodeBadJSON:              http.StatusBadRequest,
	CodeInvalidBody:          http.StatusUnprocessableEntity,
	CodeBodyTooLarge:         http.StatusRequestEntityTooLarge,
	CodeInvalidStream:        http.StatusBadRequest,
	CodeInvalidEvent:         http.StatusBadRequest,
	CodeEventTooLarge:        http.StatusRequestEntityTooLarge,
	CodeWrongExpectedVersion: http.StatusConflict,
	CodeStreamNotFound:       http.StatusNotFound,
	CodeConflict:             http.StatusConflict,
	CodeNotFound:             http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeUnauthorized:         http.StatusUnauthorized,
	CodeForbidden:            http.StatusForbidden,
	CodeInvalidTransaction:   http.StatusBadRequest,
	CodeCommandRejected:      http.StatusUnprocessableEntity,
	CodeInvalidRule:          http.StatusUnprocessableEntity,
	CodeRuleNotFound:         http.StatusNotFound,
	CodeProjectionBuilding:   http.StatusServiceUnavailable,
	CodeProjectionPaused:     http.StatusConflict,
	CodeNotCaughtUp:          http.StatusServiceUnavailable,
	CodeUnavailable:          http.StatusServiceUnavailable,
	CodeCorrupt:              http.StatusInternalServerError,
	CodeInternal:             http.StatusInternalServerError,
}

// Error is every error body the API sends.
type Error struct {
	Code    Code     `json:"code"`
	Status  int      `json:"status"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
	// Conflict says, for wrong_expected_version, what was expected and what
	// the stream's version was.
	Conflict *Conflict `json:"conflict,omitempty"`
	// Building says, for projection_building, how far the build is.
	Building *BuildProgress `json:"building,omitempty"`
}

// BuildProgress is a projection version's build progress.
type BuildProgress struct {
	Projection string  `json:"projection"`
	Version    int     `json:"version"`
	Position   uint64  `json:"position"`
	Until      uint64  `json:"until" doc:"the log position it builds up to before following live"`
	Rate       float64 `json:"events_per_second"`
	ETASeconds float64 `json:"eta_seconds"`
}

// Conflict is a failed optimistic-concurrency check.
type Conflict struct {
	Stream   string `json:"stream"`
	Expected string `json:"expected" doc:"any, no-stream, stream-exists or a version"`
	Actual   uint64 `json:"actual" doc:"the stream's version (0: no stream)"`
}

// NewError is an error of the catalog.
func NewError(code Code, format string, args ...any) *Error {
	st, ok := Status[code]
	if !ok {
		code, st = CodeInternal, http.StatusInternalServerError
	}
	return &Error{Code: code, Status: st, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s): %s", e.Code, http.StatusText(e.Status), e.Message)
}

// GetStatus is the HTTP status (the server's framework asks for it).
func (e *Error) GetStatus() int { return e.Status }

// sentinels are the Go errors a code stands for, both ways: the server
// sends the code for an error that wraps the sentinel, and a client's
// error matches the sentinel with errors.Is.
var sentinels = []struct {
	code Code
	err  error
}{
	{CodeWrongExpectedVersion, store.ErrWrongExpectedVersion},
	{CodeStreamNotFound, store.ErrStreamNotFound},
	{CodeEventTooLarge, store.ErrEventTooLarge},
	{CodeUnavailable, store.ErrClosed},
	{CodeCorrupt, store.ErrCorrupt},
	{CodeCommandRejected, aggregate.ErrRejected},
	{CodeInvalidTransaction, rules.ErrTransaction},
	{CodeInvalidRule, rules.ErrSpec},
	{CodeRuleNotFound, rules.ErrNoRule},
	{CodeInvalidEvent, event.ErrInvalidID},
	{CodeInvalidEvent, event.ErrInvalid},
	{CodeInvalidStream, event.ErrInvalid},
}

// Unwrap gives a client the Go error a conflict stands for, so that
// errors.As(err, new(*store.WrongExpectedVersionError)) holds.
func (e *Error) Unwrap() error {
	if e.Conflict == nil {
		return nil
	}
	exp, err := store.ParseExpectedVersion(e.Conflict.Expected)
	if err != nil {
		return nil
	}
	return &store.WrongExpectedVersionError{Stream: e.Conflict.Stream, Expected: exp, Actual: e.Conflict.Actual}
}

// Is makes errors.Is(err, store.ErrWrongExpectedVersion) and the like
// hold for an error a client received.
func (e *Error) Is(target error) bool {
	for _, s := range sentinels {
		if s.code == e.Code && s.err == target {
			return true
		}
	}
	return false
}

// FromError is err in the catalog: the code of the first sentinel it
// wraps, else internal. An *Error passes through.
func FromError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			e := NewError(s.code, "%s", err.Error())
			var w *store.WrongExpectedVersionError
			if errors.As(err, &w) {
				e.Conflict = &Conflict{Stream: w.Stream, Expected: w.Expected.String(), Actual: w.Actual}
			}
			return e
		}
	}
	return NewError(CodeInternal, "%s", err.Error())
}
