package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
)

var testID = must(event.ParseID("01890a5d-ac96-774b-bcce-b302099a8057"))

func testRecord(pos uint64, stream, typ string, data []byte) event.Record {
	return event.Record{
		Event:    event.Event{ID: testID, Type: typ, Data: data},
		Stream:   stream,
		Version:  pos,
		Position: pos,
		Time:     time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600)),
	}
}

func TestJSONRecordOutput(t *testing.T) {
	recs := []event.Record{
		testRecord(1, "orders-1", "order.placed", []byte(`{"sku": "A1", "qty": 2}`)),
		testRecord(2, "orders-1", "blob", []byte{0xff, 0x00, 'a'}),
		testRecord(3, "orders-2", "empty", nil),
	}
	recs[0].Metadata = []byte(`{"corr":"c"}`)
	recs[0].Schema = 2
	var buf bytes.Buffer
	w := newRecordWriter(&buf, formatJSON, false)
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"position":1,"stream":"orders-1","version":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"order.placed","schema":2,"time":"2025-01-02T02:04:05.123456789Z","data":{"sku":"A1","qty":2},"metadata":{"corr":"c"}}
{"position":2,"stream":"orders-1","version":2,"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"blob","schema":1,"time":"2025-01-02T02:04:05.123456789Z","data":"/wBh","data_encoding":"base64"}
{"position":3,"stream":"orders-2","version":3,"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"empty","schema":1,"time":"2025-01-02T02:04:05.123456789Z"}
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Records printed by read must parse back into the same events by append.
func TestJSONOutputRoundTripsThroughAppendInput(t *testing.T) {
	recs := []event.Record{
		testRecord(1, "s", "a", []byte(`{"x":[1,2,3]}`)),
		testRecord(2, "s", "b", []byte{0, 1, 2, 0xfe}),
		testRecord(3, "s", "c", nil),
	}
	recs[1].Metadata = []byte("not json")
	var buf bytes.Buffer
	w := newRecordWriter(&buf, formatJSON, false)
	for i := range recs {
		w.Write(&recs[i])
	}
	w.Flush()
	events, err := parseEvents(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		r := recs[i]
		if e.ID != r.ID || e.Type != r.Type || !bytes.Equal(e.Data, r.Data) || !bytes.Equal(e.Metadata, r.Metadata) {
			t.Errorf("event %d: got %+v, want %+v", i, e, r.Event)
		}
	}
}

func TestTableRecordOutput(t *testing.T) {
	long := `{"text":"` + strings.Repeat("é", 100) + `"}`
	recs := []event.Record{
		testRecord(1, "a", "t", []byte("{\n  \"pretty\": true\n}")),
		testRecord(1234567, "a-much-longer-stream-name", "order.placed", []byte(long)),
		testRecord(3, "b", "bin", []byte{0xff}),
	}
	var buf bytes.Buffer
	w := newRecordWriter(&buf, formatTable, false)
	for i := range recs {
		w.Write(&recs[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want header + 3:\n%s", len(lines), buf.String())
	}
	// Columns are aligned: every row's DATA starts where the header's does.
	col := strings.Index(lines[0], "DATA")
	for _, l := range lines[1:] {
		if len([]rune(l)) <= col || l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("row not aligned at column %d:\n%s\n%s", col, lines[0], l)
		}
	}
	if !strings.HasSuffix(lines[1], `{"pretty":true}`) {
		t.Errorf("data not compacted: %q", lines[1])
	}
	data2 := []rune(strings.TrimSpace(lines[2][col:]))
	if len(data2) != tableDataWidth || data2[len(data2)-1] != '…' {
		t.Errorf("long data not cut to %d runes: %q (%d)", tableDataWidth, string(data2), len(data2))
	}
	if !strings.HasSuffix(lines[3], "base64:/w==") {
		t.Errorf("binary data: %q", lines[3])
	}
	if !strings.Contains(lines[1], "2025-01-02T02:04:05.123Z") {
		t.Errorf("time not in UTC milliseconds: %q", lines[1])
	}
}

func TestLiveTableFlushesEveryRow(t *testing.T) {
	var buf bytes.Buffer
	w := newRecordWriter(&buf, formatTable, true)
	r := testRecord(1, "s", "t", []byte(`1`))
	w.Write(&r)
	if !strings.Contains(buf.String(), "\n1 ") {
		t.Fatalf("row not written before Flush: %q", buf.String())
	}
	var jbuf bytes.Buffer
	jw := newRecordWriter(&jbuf, formatJSON, true)
	jw.Write(&r)
	if !json.Valid(bytes.TrimSpace(jbuf.Bytes())) {
		t.Fatalf("json line not written before Flush: %q", jbuf.String())
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:            "0 B",
		1023:         "1023 B",
		1024:         "1.0 KiB (1024)",
		1536:         "1.5 KiB (1536)",
		256 << 20:    "256.0 MiB (268435456)",
		3 << 30:      "3.0 GiB (3221225472)",
		5<<40 + 1<<1: "5.0 TiB (5497558138882)",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
