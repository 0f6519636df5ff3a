package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// testAppendBasics: versions start at 1, positions are dense from 1,
// AppendResult says where each append landed, and reads return what was
// appended.
func testAppendBasics(t *testing.T, h Harness) {
	s := newStore(t, h)
	wantHead(t, s, 0, "of a new store")
	var m model

	steps := []struct {
		stream string
		exp    store.ExpectedVersion
		n      int
		want   store.AppendResult
	}{
		{"order-1", store.NoStream, 3, store.AppendResult{Version: 3, FirstPosition: 1, LastPosition: 3}},
		{"customer-1", store.Any, 2, store.AppendResult{Version: 2, FirstPosition: 4, LastPosition: 5}},
		{"order-1", store.Exactly(3), 1, store.AppendResult{Version: 4, FirstPosition: 6, LastPosition: 6}},
		{"order-1", store.StreamExists, 2, store.AppendResult{Version: 6, FirstPosition: 7, LastPosition: 8}},
		{"order-2", store.Any, 1, store.AppendResult{Version: 1, FirstPosition: 9, LastPosition: 9}},
		{"customer-1", store.Exactly(2), 1, store.AppendResult{Version: 3, FirstPosition: 10, LastPosition: 10}},
	}
	for i, st := range steps {
		evs := newEvents(st.n, fmt.Sprintf("basics.step%d", i))
		res := mustAppend(t, s, st.stream, st.exp, evs...)
		wantResult(t, fmt.Sprintf("step %d: Append(%q, %v, %d events)", i, st.stream, st.exp, st.n), res, st.want)
		m.add(st.stream, evs, res)
		wantHead(t, s, st.want.LastPosition, fmt.Sprintf("after step %d", i))
	}

	for _, stream := range []string{"order-1", "customer-1", "order-2"} {
		checkRecords(t, fmt.Sprintf("ReadStream(%q)", stream), readStream(t, s, stream), m.stream(stream))
	}
	checkRecords(t, "ReadAll", readAll(t, s), m.all(0, store.Filter{}))
}

// testAppendRoundTrip: every field of an event comes back byte-exact, for
// awkward values too; zero ids are replaced by distinct non-zero ones; a
// record's time is set and the same in every read.
func testAppendRoundTrip(t *testing.T, h Harness) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	cases := []struct {
		name string
		e    event.Event
	}{
		{"nil data and metadata", event.Event{ID: event.NewID(), Type: "rt.nil"}},
		{"empty data and metadata", event.Event{ID: event.NewID(), Type: "rt.empty", Data: []byte{}, Metadata: []byte{}}},
		{"all byte values", event.Event{ID: event.NewID(), Type: "rt.bytes", Data: allBytes, Metadata: bytes.Clone(allBytes[128:])}},
		{"json", event.Event{ID: event.NewID(), Type: "rt.json", Data: []byte(`{"amount":"12.50","currency":"EUR"}`), Metadata: []byte(`{"correlation":"c-1"}`)}},
		{"data only", event.Event{ID: event.NewID(), Type: "rt.data", Data: []byte("x")}},
		{"metadata only", event.Event{ID: event.NewID(), Type: "rt.meta", Metadata: []byte("m")}},
		{"schema 0", event.Event{ID: event.NewID(), Type: "rt.schema", Schema: 0}},
		{"schema 7", event.Event{ID: event.NewID(), Type: "rt.schema", Schema: 7}},
		{"schema max", event.Event{ID: event.NewID(), Type: "rt.schema", Schema: math.MaxUint32}},
		{"unicode type", event.Event{ID: event.NewID(), Type: "commande.passée ✓ 注文"}},
		{"255-byte type", event.Event{ID: event.NewID(), Type: strings.Repeat("t", event.MaxNameLen)}},
		{"64 KiB data", event.Event{ID: event.NewID(), Type: "rt.big", Data: big}},
		{"zero id", event.Event{Type: "rt.zero-id", Data: []byte("a")}},
		{"another zero id", event.Event{Type: "rt.zero-id", Data: []byte("b")}},
	}
	var evs []event.Event
	for _, c := range cases {
		if limit := h.Features.MaxEventSize; limit > 0 && c.e.Size() > limit {
			continue
		}
		evs = append(evs, c.e)
	}

	s := newStore(t, h)
	var m model
	// All in one append, then each alone in its own stream.
	m.add("roundtrip-batch", evs, mustAppend(t, s, "roundtrip-batch", store.NoStream, evs...))
	for i, e := range evs {
		e.ID = event.NewID() // the batch used the ids
		stream := fmt.Sprintf("roundtrip-%d", i)
		m.add(stream, []event.Event{e}, mustAppend(t, s, stream, store.NoStream, e))
	}

	batch := readStream(t, s, "roundtrip-batch")
	checkRecords(t, `ReadStream("roundtrip-batch")`, batch, m.stream("roundtrip-batch"))
	for i := range evs {
		stream := fmt.Sprintf("roundtrip-%d", i)
		checkRecords(t, fmt.Sprintf("ReadStream(%q)", stream), readStream(t, s, stream), m.stream(stream))
	}
	all := readAll(t, s)
	checkRecords(t, "ReadAll", all, m.all(0, store.Filter{}))

	// The ids the store assigned are distinct, and every read reports the
	// same id and time for a record.
	seen := map[event.ID]uint64{}
	for _, r := range all {
		if p, dup := seen[r.ID]; dup {
			t.Errorf("positions %d and %d have the same ID %v", p, r.Position, r.ID)
		}
		seen[r.ID] = r.Position
	}
	if d := sameRecords(batch, all[:len(batch)]); d != "" {
		t.Errorf("ReadStream and ReadAll disagree: %s", d)
	}
}

// testAppendCopiesBuffers: changing the caller's Data and Metadata slices
// after Append returns does not change what was stored.
func testAppendCopiesBuffers(t *testing.T, h Harness) {
	s := newStore(t, h)
	data, meta := []byte("original data"), []byte("original metadata")
	evs := []event.Event{{ID: event.NewID(), Type: "buffers", Data: data, Metadata: meta}}
	mustAppend(t, s, "buffers", store.NoStream, evs...)
	copy(data, "XXXXXXXX")
	copy(meta, "YYYYYYYY")
	evs[0].Type = "changed"
	for _, r := range readStream(t, s, "buffers") {
		if string(r.Data) != "original data" || string(r.Metadata) != "original metadata" || r.Type != "buffers" {
			t.Fatalf("stored event changed with the caller's buffers: Type %q, Data %q, Metadata %q", r.Type, r.Data, r.Metadata)
		}
	}
}

// testExpectedVersion: every kind of expected version, satisfied and not; a
// failed check writes nothing and reports the stream's actual version.
func testExpectedVersion(t *testing.T, h Harness) {
	cases := []struct {
		name   string
		before int // events in the stream before the append
		exp    store.ExpectedVersion
		ok     bool
	}{
		{"Any/new stream", 0, store.Any, true},
		{"Any/existing stream", 2, store.Any, true},
		{"NoStream/new stream", 0, store.NoStream, true},
		{"NoStream/existing stream", 2, store.NoStream, false},
		{"StreamExists/new stream", 0, store.StreamExists, false},
		{"StreamExists/existing stream", 2, store.StreamExists, true},
		{"Exactly/right version", 2, store.Exactly(2), true},
		{"Exactly/behind", 2, store.Exactly(1), false},
		{"Exactly/ahead", 2, store.Exactly(3), false},
		{"Exactly/new stream", 0, store.Exactly(1), false},
		{"Exactly(0)/new stream", 0, store.Exactly(0), true},
		{"Exactly(0)/existing stream", 2, store.Exactly(0), false},
	}
	s := newStore(t, h)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream := fmt.Sprintf("expected-%d", i)
			// Another stream's events make positions differ from versions.
			mustAppend(t, s, "expected-noise", store.Any, newEvent("noise"))
			if c.before > 0 {
				mustAppend(t, s, stream, store.NoStream, newEvents(c.before, "before")...)
			}
			head := mustHead(t, s)

			res, err := s.Append(testContext(t), stream, c.exp, newEvents(2, "attempt")...)
			if c.ok {
				if err != nil {
					t.Fatalf("Append(%v) to a stream at version %d: %v", c.exp, c.before, err)
				}
				wantResult(t, fmt.Sprintf("Append(%v) to a stream at version %d", c.exp, c.before), res,
					store.AppendResult{Version: uint64(c.before) + 2, FirstPosition: head + 1, LastPosition: head + 2})
				wantStreamLen(t, s, stream, c.before+2, "after the append")
				return
			}
			if d := wrongVersion(err, stream, c.exp, uint64(c.before)); d != "" {
				t.Fatalf("Append(%v) to a stream at version %d: %s", c.exp, c.before, d)
			}
			if res != (store.AppendResult{}) {
				t.Errorf("failed Append returned AppendResult %+v, want the zero value", res)
			}
			wantHead(t, s, head, "after a failed append")
			wantStreamLen(t, s, stream, c.before, "after a failed append")
		})
	}
}

// badNames are stream names and event types every store must reject.
var badNames = []struct{ name, value string }{
	{"empty", ""},
	{"256 bytes", strings.Repeat("x", event.MaxNameLen+1)},
	{"invalid UTF-8", "order-\xff"},
	{"truncated UTF-8", "order-\xe2\x82"},
	{"newline", "order\n1"},
	{"NUL", "order\x001"},
	{"DEL", "order\x7f"},
	{"C1 control", "order\u00851"},
}

// testInvalidStream: bad stream names fail with an event.ValidationError for
// "stream" and write nothing.
func testInvalidStream(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "valid", store.Any, newEvent("before"))
	for _, c := range badNames {
		t.Run(c.name, func(t *testing.T) {
			for _, exp := range []store.ExpectedVersion{store.Any, store.NoStream} {
				_, err := s.Append(testContext(t), c.value, exp, newEvents(2, "valid.type")...)
				if d := validation(err, "stream"); d != "" {
					t.Errorf("Append to stream %q with %v: %s", c.value, exp, d)
				}
			}
			wantHead(t, s, 1, "after appends to an invalid stream")
		})
	}
}

// testInvalidType: one bad event type fails the whole append with an
// event.ValidationError for "type"; nothing is written.
func testInvalidType(t *testing.T, h Harness) {
	s := newStore(t, h)
	mustAppend(t, s, "typed", store.NoStream, newEvent("before"))
	for _, c := range badNames {
		t.Run(c.name, func(t *testing.T) {
			for at := range 3 { // the bad event first, in the middle, last
				evs := newEvents(3, "valid.type")
				evs[at].Type = c.value
				_, err := s.Append(testContext(t), "typed", store.Exactly(1), evs...)
				if d := validation(err, "type"); d != "" {
					t.Errorf("Append with type %q as event %d of 3: %s", c.value, at, d)
				}
			}
			wantHead(t, s, 1, "after appends with an invalid type")
			wantStreamLen(t, s, "typed", 1, "after appends with an invalid type")
		})
	}
}

// testNameLimits: names at the limits are valid.
func testNameLimits(t *testing.T, h Harness) {
	s := newStore(t, h)
	names := []string{
		strings.Repeat("s", event.MaxNameLen),
		strings.Repeat("é", event.MaxNameLen/2) + "x", // 255 bytes of two-byte runes
		"order 1/ü-✓ 注文#%?*",
		"a",
	}
	var m model
	for _, name := range names {
		e := newEvent(name) // the same string as a type
		m.add(name, []event.Event{e}, mustAppend(t, s, name, store.NoStream, e))
		checkRecords(t, fmt.Sprintf("ReadStream(%q)", name), readStream(t, s, name), m.stream(name))
	}
	checkRecords(t, "ReadAll", readAll(t, s), m.all(0, store.Filter{}))
}

// testDuplicateIDs: the same id twice in one append is invalid; zero ids are
// not duplicates of each other.
func testDuplicateIDs(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, b := newEvent("dup"), newEvent("dup")
	for _, evs := range [][]event.Event{{a, a}, {a, b, a}, {b, a, newEvent("dup"), a}} {
		_, err := s.Append(testContext(t), "dup", store.Any, evs...)
		if !errors.Is(err, event.ErrInvalid) {
			t.Errorf("Append of %d events with a repeated id: error %v, want one matching event.ErrInvalid", len(evs), err)
		}
	}
	wantHead(t, s, 0, "after appends with repeated ids")
	wantStreamLen(t, s, "dup", 0, "after appends with repeated ids")

	res := mustAppend(t, s, "dup", store.NoStream, event.Event{Type: "zero"}, event.Event{Type: "zero"})
	wantResult(t, "Append of two zero-id events", res, store.AppendResult{Version: 2, FirstPosition: 1, LastPosition: 2})
	recs := readStream(t, s, "dup")
	if len(recs) != 2 || recs[0].ID.IsZero() || recs[0].ID == recs[1].ID {
		t.Fatalf("two zero-id events were stored with ids %v, want two distinct non-zero ids", ids(recs))
	}
}

func ids(recs []event.Record) []event.ID {
	out := make([]event.ID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// sizedEvent returns an event whose Size is exactly size, spread over Type,
// Metadata and Data so that a store counting only Data gets it wrong.
func sizedEvent(size int) event.Event {
	const typ, metaLen = "sized", 16
	data := make([]byte, size-len(typ)-metaLen)
	for i := range data {
		data[i] = byte(i * 7)
	}
	return event.Event{ID: event.NewID(), Type: typ, Metadata: bytes.Repeat([]byte{'m'}, metaLen), Data: data}
}

// testEventTooLarge: the declared maximum is accepted, one byte more is
// rejected with ErrEventTooLarge and nothing of the append is written; the
// limit is per event, not per append.
func testEventTooLarge(t *testing.T, h Harness) {
	limit := h.Features.MaxEventSize
	s := newStore(t, h)
	var m model

	atMax := sizedEvent(limit)
	m.add("sized", []event.Event{atMax}, mustAppend(t, s, "sized", store.NoStream, atMax))

	tooBig := [][]event.Event{
		{sizedEvent(limit + 1)},
		{newEvent("small"), sizedEvent(limit + 1), newEvent("small")},
		{newEvent("small"), newEvent("small"), sizedEvent(limit + 1)},
	}
	for _, evs := range tooBig {
		_, err := s.Append(testContext(t), "sized", store.Any, evs...)
		if !errors.Is(err, store.ErrEventTooLarge) {
			t.Errorf("Append of %d events, one of Size %d (limit %d): error %v, want one matching store.ErrEventTooLarge",
				len(evs), limit+1, limit, err)
		}
	}
	wantHead(t, s, 1, "after too-large appends")

	// Two events at the limit in one append: the limit is per event.
	two := []event.Event{sizedEvent(limit), sizedEvent(limit)}
	m.add("sized", two, mustAppend(t, s, "sized", store.Exactly(1), two...))
	checkRecords(t, `ReadStream("sized")`, readStream(t, s, "sized"), m.stream("sized"))
}
