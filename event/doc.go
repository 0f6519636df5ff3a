// Package event owns the envelope every other part of Strata agrees on: an
// Event as a caller hands it to the log, and a Record as the log hands it back
// (the event plus where and when it was stored). It depends on the standard
// library and one JSON decoder (goccy/go-json, for speed) only, so storage,
// domain code and tools can all share it.
package event
