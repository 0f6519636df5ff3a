package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// mustOpen opens a log, with 1 MiB segments unless opts says otherwise:
// segments are allocated to their full size, and scanning a large zero tail
// under the race detector is slow for no benefit here.
func mustOpen(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	if opts.SegmentSize == 0 {
		opts.SegmentSize = 1 << 20
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func mustAppend(t *testing.T, l *Log, stream string, n int) store.AppendResult {
	t.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Type: "test.event", Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	res, err := l.Append(context.Background(), stream, store.Any, evs...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

func readAllRecords(t *testing.T, l *Log) []event.Record {
	t.Helper()
	var out []event.Record
	for r, err := range l.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// frameOffsets walks an intact segment file and returns each frame's offset.
func frameOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := segmentHeaderSize; off < len(b); {
		n, err := frameLen(b[off:], maxBody)
		if err != nil {
			t.Fatalf("walk %s at %d: %v", path, off, err)
		}
		offs = append(offs, int64(off))
		off += n
	}
	return offs
}

func lastSegmentPath(t *testing.T, dir string) string {
	t.Helper()
	bases, err := listSegments(dir)
	if err != nil || len(bases) == 0 {
		t.Fatalf("list segments: %v %v", bases, err)
	}
	return filepath.Join(dir, segmentName(bases[len(bases)-1]))
}

func TestTornTailIsTruncated(t *testing.T) {
	// The log holds 10 single-event appends to "s" (positions 1..10), then one
	// three-event append (11..13). Each case damages the end of the file.
	cases := []struct {
		name     string
		damage   func(b []byte, offs []int64) []byte
		wantHead uint64
	}{
		{"cut inside the last frame", func(b []byte, offs []int64) []byte { return b[:offs[12]+20] }, 10},
		{"cut after the first frame of the last append", func(b []byte, offs []int64) []byte { return b[:offs[12]] }, 10},
		{"cut inside a frame header", func(b []byte, offs []int64) []byte { return b[:offs[11]+3] }, 10},
		{"garbage appended", func(b []byte, offs []int64) []byte {
			return append(b, []byte("\x40\x00\x00\x00not a frame at all, just noise")...)
		}, 13},
		{"zeros appended", func(b []byte, offs []int64) []byte { return append(b, make([]byte, 4096)...) }, 13},
		{"last frame's payload scrambled", func(b []byte, offs []int64) []byte { b[len(b)-2] ^= 0xff; return b }, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{})
			for range 10 {
				mustAppend(t, l, "s", 1)
			}
			mustAppend(t, l, "s", 3)
			l.Close()
			// The index saw everything before the clean close; drop it so that
			// the damaged records count as never indexed, as after a crash.
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
			path := lastSegmentPath(t, dir)
			offs := frameOffsets(t, path)
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tc.damage(b, offs), 0o644); err != nil {
				t.Fatal(err)
			}

			l = mustOpen(t, dir, Options{})
			if h, _ := l.Head(context.Background()); h != tc.wantHead {
				t.Fatalf("head after recovery = %d, want %d", h, tc.wantHead)
			}
			res := mustAppend(t, l, "s", 2)
			if res.FirstPosition != tc.wantHead+1 || res.Version != tc.wantHead+2 {
				t.Fatalf("append after recovery = %+v, want positions from %d", res, tc.wantHead+1)
			}
			l.Close()
			l = mustOpen(t, dir, Options{Verify: VerifyAll})
			defer l.Close()
			recs := readAllRecords(t, l)
			if uint64(len(recs)) != tc.wantHead+2 {
				t.Fatalf("read %d records after reopen, want %d", len(recs), tc.wantHead+2)
			}
			if _, err := Verify(context.Background(), dir); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func TestFlippedByteIsRefusedWithSegmentAndOffset(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	for i := range 100 {
		mustAppend(t, l, fmt.Sprintf("acct-%d", i%7), 10)
	}
	l.Close()
	path := lastSegmentPath(t, dir)
	offs := frameOffsets(t, path)
	b, _ := os.ReadFile(path)
	flip := int64(len(b) / 2)
	b[flip] ^= 0x20
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	frame := offs[0]
	for _, o := range offs {
		if o <= flip {
			frame = o
		}
	}

	_, err := Open(dir, Options{SegmentSize: 1 << 20})
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("open = %v, want a CorruptionError", err)
	}
	if ce.Segment != filepath.Base(path) || ce.Offset != frame {
		t.Fatalf("open reported %s at %d, want %s at %d", ce.Segment, ce.Offset, filepath.Base(path), frame)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, b) {
		t.Fatal("a refused open changed the segment")
	}
	_, err = Verify(context.Background(), dir)
	if !errors.As(err, &ce) || ce.Offset != frame {
		t.Fatalf("verify = %v, want corruption at %d", err, frame)
	}
}

func TestFlippedByteInLastRecordIsNotMistakenForATornWrite(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	mustAppend(t, l, "s", 5)
	l.Close() // the index now covers position 5: it was durable
	path := lastSegmentPath(t, dir)
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	os.WriteFile(path, b, 0o644)
	if _, err := Open(dir, Options{}); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("open = %v, want corruption", err)
	}
	if rep, err := Verify(context.Background(), dir); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("verify = %+v, %v; want the corruption Open reports", rep, err)
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 64 << 10})
	for i := range 200 {
		mustAppend(t, l, fmt.Sprintf("s-%d", i%3), 10)
	}
	st, _ := l.Stats(context.Background())
	l.Close()
	if st.Segments < 3 {
		t.Fatalf("want several segments, got %d", st.Segments)
	}
	bases, _ := listSegments(dir)
	first := filepath.Join(dir, segmentName(bases[0]))
	b, _ := os.ReadFile(first)
	b[len(b)/2] ^= 0x01
	os.WriteFile(first, b, 0o644)

	if _, err := Open(dir, Options{Verify: VerifyAll}); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("open with VerifyAll = %v, want corruption", err)
	}
	// The default open checks only the tail; the damage surfaces on read.
	l = mustOpen(t, dir, Options{})
	defer l.Close()
	var readErr error
	for _, err := range l.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			readErr = err
		}
	}
	var ce *CorruptionError
	if !errors.As(readErr, &ce) || ce.Segment != segmentName(bases[0]) {
		t.Fatalf("read = %v, want corruption in %s", readErr, segmentName(bases[0]))
	}
	if _, err := Verify(context.Background(), dir); !errors.As(err, &ce) || ce.Segment != segmentName(bases[0]) {
		t.Fatalf("verify = %v", err)
	}
}

func TestIndexIsRebuiltFromTheLog(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 64 << 10})
	for i := range 300 {
		mustAppend(t, l, fmt.Sprintf("s-%d", i%11), 3)
	}
	l.Close()
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{})
	defer l.Close()
	st, _ := l.Stats(context.Background())
	if st.Streams != 11 || st.Head != 900 || st.Indexed != 900 {
		t.Fatalf("stats after rebuild = %+v", st)
	}
	n := 0
	for r, err := range l.ReadStream(context.Background(), "s-4", store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Version != uint64(n) {
			t.Fatalf("version %d at %d", r.Version, n)
		}
	}
	if n != 81 {
		t.Fatalf("read %d events of s-4, want 81", n)
	}
}

func TestWriteErrorsAreSticky(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{})
	defer l.Close()
	mustAppend(t, l, "s", 1)
	l.w.f.Close() // the next write fails
	ctx := context.Background()
	_, err1 := l.Append(ctx, "s", store.Any, event.Event{Type: "t"})
	if err1 == nil {
		t.Fatal("append after a failed write succeeded")
	}
	_, err2 := l.Append(ctx, "other", store.Any, event.Event{Type: "t"})
	if err2 == nil || err2.Error() != err1.Error() {
		t.Fatalf("second append = %v, want the first error again (%v)", err2, err1)
	}
	if h, _ := l.Head(ctx); h != 1 {
		t.Fatalf("head = %d after failed appends, want 1", h)
	}
	if recs := readAllRecords(t, l); len(recs) != 1 {
		t.Fatalf("reads after the failure see %d records, want 1", len(recs))
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	defer l.Close()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}
