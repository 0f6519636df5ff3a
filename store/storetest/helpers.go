package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// newEvent returns an event with a fresh id, the given type and a small
// payload that names the id, so a record read back can be matched by content.
func newEvent(typ string) event.Event {
	id := event.NewID()
	return event.Event{
		ID:       id,
		Type:     typ,
		Schema:   1,
		Data:     []byte(`{"id":"` + id.String() + `"}`),
		Metadata: []byte(`{"source":"storetest"}`),
	}
}

// newEvents returns n events of one type.
func newEvents(n int, typ string) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = newEvent(typ)
	}
	return evs
}

// mustAppend appends and fails the test on error.
func mustAppend(t *testing.T, s store.Store, stream string, exp store.ExpectedVersion, evs ...event.Event) store.AppendResult {
	t.Helper()
	res, err := s.Append(testContext(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events): %v", stream, exp, len(evs), err)
	}
	return res
}

// wantResult compares an AppendResult field by field.
func wantResult(t *testing.T, what string, got, want store.AppendResult) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: AppendResult = %+v, want %+v", what, got, want)
	}
}

// mustHead returns the store's head and fails the test on error.
func mustHead(t *testing.T, s store.Store) uint64 {
	t.Helper()
	h, err := s.Head(testContext(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// wantHead fails the test unless Head is want.
func wantHead(t *testing.T, s store.Store, want uint64, when string) {
	t.Helper()
	if got := mustHead(t, s); got != want {
		t.Fatalf("Head %s = %d, want %d", when, got, want)
	}
}

// readResult is what draining a read iterator produced.
type readResult struct {
	recs []event.Record
	err  error
	// problems lists breaches of the iterator convention: a non-zero record
	// yielded with an error, anything yielded after the error.
	problems []string
}

// drain runs seq to its end on the calling goroutine. It keeps asking for
// more after an error, to check that the iterator stops by itself.
func drain(seq iter.Seq2[event.Record, error]) readResult {
	var res readResult
	seq(func(r event.Record, err error) bool {
		if res.err != nil {
			res.problems = append(res.problems, fmt.Sprintf("iterator yielded again after error %q (record at position %d, error %v)", res.err, r.Position, err))
			return false
		}
		if err != nil {
			res.err = err
			if !reflect.ValueOf(r).IsZero() {
				res.problems = append(res.problems, fmt.Sprintf("error %q yielded with a non-zero record (stream %q, position %d)", err, r.Stream, r.Position))
			}
			return true
		}
		res.recs = append(res.recs, r)
		return true
	})
	return res
}

// collect drains seq on another goroutine, waiting at most waitTimeout, and
// reports breaches of the iterator convention as test errors. what names the
// read in messages.
func collect(t *testing.T, what string, seq iter.Seq2[event.Record, error]) ([]event.Record, error) {
	t.Helper()
	done := make(chan readResult, 1)
	go func() { done <- drain(seq) }()
	select {
	case res := <-done:
		for _, p := range res.problems {
			t.Errorf("%s: %s", what, p)
		}
		return res.recs, res.err
	case <-time.After(waitTimeout):
		t.Fatalf("%s: did not finish within %v", what, waitTimeout)
		return nil, nil
	}
}

// mustCollect is collect that fails the test when the read ends with an error.
func mustCollect(t *testing.T, what string, seq iter.Seq2[event.Record, error]) []event.Record {
	t.Helper()
	recs, err := collect(t, what, seq)
	if err != nil {
		t.Fatalf("%s: error after %d records: %v", what, len(recs), err)
	}
	return recs
}

// readStream reads a whole stream forwards.
func readStream(t *testing.T, s store.Store, stream string) []event.Record {
	t.Helper()
	return mustCollect(t, fmt.Sprintf("ReadStream(%q)", stream), s.ReadStream(testContext(t), stream, store.ReadStreamOptions{}))
}

// readAll reads the whole log.
func readAll(t *testing.T, s store.Store) []event.Record {
	t.Helper()
	return mustCollect(t, "ReadAll", s.ReadAll(testContext(t), store.ReadAllOptions{}))
}

// streamVersion returns a stream's version by reading its last event (0 when
// the stream does not exist).
func streamVersion(ctx context.Context, s store.Store, stream string) (uint64, error) {
	res := drain(s.ReadStream(ctx, stream, store.ReadStreamOptions{Backwards: true, Limit: 1}))
	switch {
	case len(res.problems) > 0:
		return 0, errors.New(strings.Join(res.problems, "; "))
	case errors.Is(res.err, store.ErrStreamNotFound):
		if len(res.recs) > 0 {
			return 0, fmt.Errorf("ReadStream(%q) yielded %d records, then ErrStreamNotFound", stream, len(res.recs))
		}
		return 0, nil
	case res.err != nil:
		return 0, res.err
	case len(res.recs) != 1:
		return 0, fmt.Errorf("ReadStream(%q, Backwards, Limit 1) yielded %d records, want 1", stream, len(res.recs))
	}
	return res.recs[0].Version, nil
}

// wantStreamLen fails the test unless the stream holds n events (n == 0: the
// stream is not found).
func wantStreamLen(t *testing.T, s store.Store, stream string, n int, when string) {
	t.Helper()
	recs, err := collect(t, fmt.Sprintf("ReadStream(%q) %s", stream, when), s.ReadStream(testContext(t), stream, store.ReadStreamOptions{}))
	switch {
	case n == 0 && !errors.Is(err, store.ErrStreamNotFound):
		t.Fatalf("ReadStream(%q) %s: got %d records and error %v, want store.ErrStreamNotFound", stream, when, len(recs), err)
	case n > 0 && err != nil:
		t.Fatalf("ReadStream(%q) %s: %v", stream, when, err)
	case len(recs) != n:
		t.Fatalf("ReadStream(%q) %s: %d records, want %d", stream, when, len(recs), n)
	}
}

// model is the suite's own account of what it appended: the records a store
// must give back, indexed by position-1. Time is not modelled; a zero ID
// means the store was to assign one.
type model struct {
	recs []event.Record
}

// add records a successful append of evs to stream.
func (m *model) add(stream string, evs []event.Event, res store.AppendResult) {
	for i, e := range evs {
		pos := res.FirstPosition + uint64(i)
		for uint64(len(m.recs)) < pos {
			m.recs = append(m.recs, event.Record{})
		}
		m.recs[pos-1] = event.Record{
			Event:    e,
			Stream:   stream,
			Version:  res.Version - uint64(len(evs)) + 1 + uint64(i),
			Position: pos,
		}
	}
}

// head is the last position appended.
func (m *model) head() uint64 { return uint64(len(m.recs)) }

// stream returns the records of one stream in version order.
func (m *model) stream(name string) []event.Record {
	var out []event.Record
	for _, r := range m.recs {
		if r.Stream == name {
			out = append(out, r)
		}
	}
	return out
}

// all returns the records after position after that pass f.
func (m *model) all(after uint64, f store.Filter) []event.Record {
	var out []event.Record
	for _, r := range m.recs {
		if r.Position > after && f.Match(&r) {
			out = append(out, r)
		}
	}
	return out
}

// clockSkew is how far a record's time may lie outside the suite's run: a
// store's clock may differ a little from the test's (a database server's).
const clockSkew = 10 * time.Minute

var suiteLoaded = time.Now()

// diffRecord says how got differs from want, or returns "". A zero want.ID
// accepts any non-zero ID. want.Time is ignored; got.Time must be set and
// plausible. Nil and empty Data or Metadata are the same: a backend need not
// tell them apart.
func diffRecord(got, want event.Record) string {
	var d []string
	if got.Stream != want.Stream {
		d = append(d, fmt.Sprintf("Stream %q, want %q", got.Stream, want.Stream))
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("Version %d, want %d", got.Version, want.Version))
	}
	if got.Position != want.Position {
		d = append(d, fmt.Sprintf("Position %d, want %d", got.Position, want.Position))
	}
	switch {
	case got.ID.IsZero():
		d = append(d, "ID is zero, want a store-assigned id")
	case !want.ID.IsZero() && got.ID != want.ID:
		d = append(d, fmt.Sprintf("ID %v, want %v", got.ID, want.ID))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	// Unspecified: event.Event says Schema 0 means 1, so a backend may store
	// 0 as 0 or as 1. Other values must round-trip.
	if schema(got.Schema) != schema(want.Schema) {
		d = append(d, fmt.Sprintf("Schema %d, want %d", got.Schema, want.Schema))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("Data %s, want %s", abbrev(got.Data), abbrev(want.Data)))
	}
	if !bytes.Equal(got.Metadata, want.Metadata) {
		d = append(d, fmt.Sprintf("Metadata %s, want %s", abbrev(got.Metadata), abbrev(want.Metadata)))
	}
	switch {
	case got.Time.IsZero():
		d = append(d, "Time is zero")
	case got.Time.Before(suiteLoaded.Add(-clockSkew)) || got.Time.After(time.Now().Add(clockSkew)):
		d = append(d, fmt.Sprintf("Time %v is implausible (suite started %v)", got.Time, suiteLoaded))
	}
	return strings.Join(d, "; ")
}

func schema(v uint32) uint32 {
	if v == 0 {
		return 1
	}
	return v
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// checkRecords compares a read with the model's records, reporting at most a
// few differences so a broken store does not bury the first one.
func checkRecords(t *testing.T, what string, got, want []event.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records (%s), want %d (%s)", what, len(got), positions(got), len(want), positions(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if d := diffRecord(got[i], want[i]); d != "" {
			t.Errorf("%s: record %d (position %d): %s", what, i, want[i].Position, d)
			if bad++; bad == 5 {
				t.Errorf("%s: more differences not shown", what)
				break
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// positions summarises the positions of recs for failure messages.
func positions(recs []event.Record) string {
	ps := make([]string, 0, min(len(recs), 12))
	for i, r := range recs {
		if i == 10 && len(recs) > 12 {
			ps = append(ps, "…", fmt.Sprint(recs[len(recs)-1].Position))
			break
		}
		ps = append(ps, fmt.Sprint(r.Position))
	}
	return "positions " + strings.Join(ps, ",")
}

// sameRecords reports how two reads of the same records differ, comparing
// every field exactly (IDs and times included), or "".
func sameRecords(got, want []event.Record) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d records (%s), want %d (%s)", len(got), positions(got), len(want), positions(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if d := diffRecord(g, w); d != "" {
			return fmt.Sprintf("record %d: %s", i, d)
		}
		if g.ID != w.ID {
			return fmt.Sprintf("record %d: ID %v, want %v", i, g.ID, w.ID)
		}
		if !g.Time.Equal(w.Time) {
			return fmt.Sprintf("record %d (position %d): Time %v, want %v", i, g.Position, g.Time, w.Time)
		}
	}
	return ""
}

// wrongVersion checks that err is a wrong-expected-version failure for
// stream with the given expected and actual versions.
func wrongVersion(err error, stream string, exp store.ExpectedVersion, actual uint64) string {
	if err == nil {
		return "succeeded, want a wrong-expected-version error"
	}
	if !errors.Is(err, store.ErrWrongExpectedVersion) {
		return fmt.Sprintf("error %q does not match store.ErrWrongExpectedVersion", err)
	}
	var wev *store.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		return fmt.Sprintf("error %q is not a *store.WrongExpectedVersionError", err)
	}
	var d []string
	if wev.Stream != stream {
		d = append(d, fmt.Sprintf("Stream %q, want %q", wev.Stream, stream))
	}
	if wev.Expected != exp {
		d = append(d, fmt.Sprintf("Expected %v, want %v", wev.Expected, exp))
	}
	if wev.Actual != actual {
		d = append(d, fmt.Sprintf("Actual %d, want %d", wev.Actual, actual))
	}
	if d != nil {
		return "WrongExpectedVersionError: " + strings.Join(d, "; ")
	}
	return ""
}

// validation checks that err is a validation error for field.
func validation(err error, field string) string {
	if err == nil {
		return "succeeded, want a validation error"
	}
	if !errors.Is(err, event.ErrInvalid) {
		return fmt.Sprintf("error %q does not match event.ErrInvalid", err)
	}
	var ve *event.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Sprintf("error %q is not an *event.ValidationError", err)
	}
	if ve.Field != field {
		return fmt.Sprintf("ValidationError.Field = %q, want %q (error %q)", ve.Field, field, err)
	}
	return ""
}

// within runs f on another goroutine and fails the test if it does not
// return within waitTimeout: for calls that could deadlock. f reports with
// t.Error, never t.Fatal (it is not on the test's goroutine).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: did not return within %v (deadlock?)", what, waitTimeout)
	}
}

// scale shrinks a load-test size under -short.
func scale(n int) int {
	if testing.Short() {
		return max(n/10, 1)
	}
	return n
}
