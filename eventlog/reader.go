package eventlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

const (
	// readChunk is how much a cursor reads at once. Each chunk is a fresh
	// allocation that is never written after it is filled: records alias it
	// (zero-copy strings and slices), which is safe only because of that.
	readChunk = 256 << 10
	// maxBody bounds a frame's body whatever MaxEventSize the log was
	// written with, so that a log written with a larger limit stays readable.
	maxBody = maxMaxEventSize + bodyFixedSize + 2*event.MaxNameLen
)

// view is what readers may see: everything up to head, which is durable
// (in the log's durability mode). Views are immutable and replaced whole.
type view struct {
	head uint64     // last published position
	segs []*segment // every segment, oldest first; only the last is active
	end  int64      // end offset of the published records in the last segment
}

// segEnd is the end of published data in segs[i].
func (v *view) segEnd(i int) int64 {
	if i == len(v.segs)-1 {
		return v.end
	}
	return v.segs[i].size
}

// findSegment returns the index of the segment holding pos.
func (v *view) findSegment(pos uint64) int {
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].base > pos })
	if i == 0 {
		return 0
	}
	return i - 1
}

// cursor reads records in position order. It is not safe for concurrent use.
type cursor struct {
	segIdx int
	seg    *segment
	next   uint64 // position of the next record
	off    int64  // file offset of buf[0]
	buf    []byte // unread bytes of the current chunk, starting at a frame
}

// seekCursor positions a cursor at the record with position pos (which may
// be head+1: the cursor then waits there for new records).
func (l *Log) seekCursor(v *view, pos uint64) (*cursor, error) {
	if pos == 0 {
		pos = 1
	}
	i := v.findSegment(pos)
	seg := v.segs[i]
	c := &cursor{segIdx: i, seg: seg, next: seg.base, off: segmentHeaderSize}
	if p, off, ok := l.sparse.floor(pos); ok && p >= seg.base {
		c.next, c.off = p, off
	}
	// Skip forward to pos: at most sparseEvery records.
	for c.next < pos {
		var r event.Record
		ok, err := c.read(v, &r)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
	}
	return c, nil
}

// read decodes the next record into r. ok is false when the cursor has
// reached v's head.
func (c *cursor) read(v *view, r *event.Record) (ok bool, err error) {
	_, _, ok, err = c.readFrame(v, r)
	return ok, err
}

// readFrame is read that also reports the record's offset in its segment
// (c.seg after the call) and its flags.
func (c *cursor) readFrame(v *view, r *event.Record) (off int64, flags byte, ok bool, err error) {
	if c.next > v.head {
		return 0, 0, false, nil
	}
	for {
		end := v.segEnd(c.segIdx)
		if len(c.buf) == 0 && c.off >= end {
			if c.segIdx+1 >= len(v.segs) {
				return 0, 0, false, fmt.Errorf("eventlog: position %d missing: segment %s ends at %d", c.next, c.seg.name, end)
			}
			c.segIdx++
			c.seg = v.segs[c.segIdx]
			c.off, c.buf = segmentHeaderSize, nil
			continue
		}
		n, flags, err := decodeFrame(c.buf, maxBody, r)
		if err == errShortFrame {
			if err := c.fill(end); err != nil {
				return 0, 0, false, err
			}
			continue
		}
		if err != nil {
			return 0, 0, false, &CorruptionError{Segment: c.seg.name, Offset: c.off, Reason: err.Error()}
		}
		if r.Position != c.next {
			return 0, 0, false, &CorruptionError{Segment: c.seg.name, Offset: c.off,
				Reason: fmt.Sprintf("record has position %d, expected %d", r.Position, c.next)}
		}
		off = c.off
		c.buf = c.buf[n:]
		c.off += int64(n)
		c.next++
		return off, flags, true, nil
	}
}

// fill reads a new chunk starting at the unread bytes, up to end.
func (c *cursor) fill(end int64) error {
	start := c.off
	want := int64(readChunk)
	if len(c.buf) >= frameHeaderSize {
		if n, err := frameLen(c.buf, maxBody); err == nil && int64(n) > want {
			want = int64(n)
		}
	}
	if start+want > end {
		want = end - start
	}
	if want <= int64(len(c.buf)) {
		return &CorruptionError{Segment: c.seg.name, Offset: start, Reason: "frame extends past the end of the segment's data"}
	}
	buf := make([]byte, want)
	n, err := c.seg.r.ReadAt(buf, start)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == want) {
		if errors.Is(err, os.ErrClosed) {
			return store.ErrClosed
		}
		return fmt.Errorf("eventlog: read segment %s at %d: %w", c.seg.name, start, err)
	}
	c.buf = buf
	return nil
}
