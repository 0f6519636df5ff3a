package eventlog

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"

	"github.com/stratadb/strata/event"
)

func encodeTestFrame(stream string, e event.Event, pos, ver uint64, ns int64, flags byte) []byte {
	b := appendFrame(nil, stream, &e)
	sealFrame(b, pos, ver, ns, flags)
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		stream := rapid.StringMatching(`[a-z0-9-]{1,40}`).Draw(t, "stream")
		e := event.Event{
			ID:       event.ID(rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "id")),
			Type:     rapid.StringMatching(`[a-z.]{1,30}`).Draw(t, "type"),
			Schema:   rapid.Uint32().Draw(t, "schema"),
			Data:     rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "data"),
			Metadata: rapid.SliceOfN(rapid.Byte(), 0, 50).Draw(t, "meta"),
		}
		pos, ver := rapid.Uint64().Draw(t, "pos"), rapid.Uint64().Draw(t, "ver")
		ns := rapid.Int64().Draw(t, "ns")
		flags := rapid.Byte().Draw(t, "flags")
		b := encodeTestFrame(stream, e, pos, ver, ns, flags)
		if len(b) != frameSize(stream, &e) {
			t.Fatalf("frame is %d bytes, frameSize says %d", len(b), frameSize(stream, &e))
		}
		var r event.Record
		n, gotFlags, err := decodeFrame(b, maxBody, &r)
		if err != nil || n != len(b) || gotFlags != flags {
			t.Fatalf("decode: n=%d flags=%d err=%v", n, gotFlags, err)
		}
		if r.Stream != stream || r.Type != e.Type || r.ID != e.ID || r.Schema != e.Schema ||
			!bytes.Equal(r.Data, e.Data) || !bytes.Equal(r.Metadata, e.Metadata) ||
			r.Position != pos || r.Version != ver || r.Time.UnixNano() != ns {
			t.Fatalf("round trip changed the record: %+v", r)
		}
		// Any single flipped bit is caught.
		i := rapid.IntRange(0, len(b)-1).Draw(t, "flip")
		b[i] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		if _, _, err := decodeFrame(b, maxBody, &r); err == nil {
			t.Fatalf("flipped bit at %d went unnoticed", i)
		}
	})
}

// FuzzDecodeFrame feeds arbitrary bytes to the decoder: it must never panic,
// and whatever it accepts must re-encode to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeTestFrame("order-1", event.Event{Type: "order.placed", Data: []byte(`{"total":"12.50"}`)}, 1, 1, 1700000000000000000, flagCommit))
	f.Add(encodeTestFrame("s", event.Event{Type: "t", Metadata: []byte(`{"m":1}`)}, 42, 7, 0, 0))
	f.Add([]byte{})
	f.Add(make([]byte, frameHeaderSize+bodyFixedSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r event.Record
		n, flags, err := decodeFrame(b, maxBody, &r)
		if err != nil {
			return
		}
		again := encodeTestFrame(r.Stream, r.Event, r.Position, r.Version, r.Time.UnixNano(), flags)
		// Reserved bytes are not decoded; compare everything else.
		got := bytes.Clone(b[:n])
		got[frameHeaderSize+47] = 0
		if !bytes.Equal(again[frameHeaderSize:], got[frameHeaderSize:]) || n != len(again) {
			t.Fatalf("decoded frame re-encodes differently:\n in  %x\n out %x", got, again)
		}
	})
}
