package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/stratadb/strata/event"
)

// recover brings the log to a consistent state before the writer starts:
// it checks the segments Options.Verify asks for, truncates a torn tail,
// and brings the stream index up to date. See doc.go, "Recovery".
func (l *Log) recover() error {
	meta, err := l.readIndexMeta()
	if err != nil {
		return err
	}
	bases, err := listSegments(l.dir)
	if err != nil {
		return fmt.Errorf("eventlog: list segments: %w", err)
	}
	l.w.heads = make(map[string]*streamHead)
	if len(bases) == 0 {
		if meta.indexed > 0 {
			// An index without a log: start both afresh.
			if err := l.resetIndex(); err != nil {
				return err
			}
		}
		f, seg, err := createSegment(l.dir, 1, l.opts.Now(), l.opts.SegmentSize)
		if err != nil {
			return err
		}
		l.w.seg, l.w.f, l.w.off, l.w.next = seg, f, segmentHeaderSize, 1
		l.view.Store(&view{segs: []*segment{seg}, end: segmentHeaderSize})
		l.prealloc.start(f, segmentHeaderSize, l.preallocLimit())
		l.synced.Store(0)
		return nil
	}

	segs := make([]*segment, 0, len(bases))
	for _, b := range bases {
		s, err := openSegmentReader(l.dir, b)
		if err != nil {
			for _, s := range segs {
				s.r.Close()
			}
			return err
		}
		segs = append(segs, s)
	}
	l.view.Store(&view{segs: segs}) // so that releaseFiles closes them on failure
	if err := l.loadSparse(meta.indexed); err != nil {
		return err
	}

	last := len(segs) - 1
	scanFrom := last
	if l.opts.Verify == VerifyAll {
		scanFrom = 0
	}
	tmp := &view{segs: segs}
	if i := tmp.findSegment(meta.indexed + 1); i < scanFrom {
		scanFrom = i
	}
	for i := 0; i < scanFrom; i++ {
		fi, err := segs[i].r.Stat()
		if err != nil {
			return fmt.Errorf("eventlog: stat segment %s: %w", segs[i].name, err)
		}
		segs[i].size = fi.Size()
	}
	next := segs[scanFrom].base
	var end int64
	for i := scanFrom; i <= last; i++ {
		s := segs[i]
		if s.base != next {
			return &CorruptionError{Segment: s.name, Offset: 0,
				Reason: fmt.Sprintf("segment starts at position %d, but the previous one ends at %d", s.base, next-1)}
		}
		next, end, err = l.scanSegment(s, i == last, meta)
		if err != nil {
			return err
		}
		if i < last {
			s.size = end
		}
	}
	head := next - 1
	if meta.indexed > head {
		// Possible only when appends were not fsynced (SyncNone/Interval) and
		// the machine crashed: the index saw records the log lost.
		l.opts.Logger.Warn("eventlog: stream index is ahead of the log; rebuilding it", "indexed", meta.indexed, "head", head)
		for _, s := range segs {
			s.r.Close()
		}
		if err := l.resetIndex(); err != nil {
			return err
		}
		l.sparse = sparseIndex{}
		return l.recover()
	}
	l.sparse.truncateAfter(head)

	s := segs[last]
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("eventlog: open segment for writing: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() < l.opts.SegmentSize {
		_ = allocate(f, l.opts.SegmentSize) // an optimisation only; see createSegment
	}
	l.w.seg, l.w.f, l.w.off, l.w.next = s, f, end, next
	l.prealloc.start(f, end, l.preallocLimit())
	l.view.Store(&view{head: head, segs: segs, end: end})

	// What recovery kept is on disk, but perhaps only in the page cache
	// (after a process crash in SyncNone mode): make it durable, so that
	// everything indexed from here on counts as synced.
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("eventlog: sync recovered segment: %w", err)
	}
	l.synced.Store(head)
	l.tail.mu.indexedStreams = meta.streams
	l.indexed.Store(meta.indexed)
	if err := l.catchUpIndex(meta.indexed + 1); err != nil {
		return fmt.Errorf("eventlog: bring stream index up to date: %w", err)
	}
	// The writer's probe reads only sstables (probe.go): nothing indexed
	// before the writer starts may stay in a memtable.
	if err := l.db.Flush(); err != nil {
		return fmt.Errorf("eventlog: flush stream index: %w", err)
	}
	return nil
}

func (l *Log) readIndexMeta() (indexMeta, error) {
	val, closer, err := l.db.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return indexMeta{}, nil
	}
	if err != nil {
		return indexMeta{}, fmt.Errorf("eventlog: read index meta: %w", err)
	}
	defer closer.Close()
	return decodeIndexMeta(val)
}

// loadSparse loads the persisted sparse points (those the index covers).
func (l *Log) loadSparse(indexed uint64) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSparse}, UpperBound: []byte{prefixSparse + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var pts []sparsePoint
	for valid := it.First(); valid; valid = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			return errors.New("eventlog: malformed sparse index entry")
		}
		pos := binary.BigEndian.Uint64(k[1:])
		if pos > indexed {
			break
		}
		pts = append(pts, sparsePoint{pos: pos, off: int64(binary.BigEndian.Uint64(v))})
	}
	l.sparse.add(pts...)
	return it.Error()
}

// segScan is what checking one segment found.
type segScan struct {
	size       int64
	dataEnd    int64            // size less a zero-filled tail (preallocation)
	headerErr  error            // the header is bad
	commitEnd  int64            // offset after the last complete append
	commitNext uint64           // position after the last complete append
	bad        *CorruptionError // first bad frame, if any
	records    uint64           // intact records read (a torn append's too)
	points     []sparsePoint    // sparse points up to commitEnd
}

// clean reports whether the segment ends exactly after a complete append.
func (sc *segScan) clean() bool {
	return sc.headerErr == nil && sc.bad == nil && sc.commitEnd == sc.dataEnd
}

// zeroTail reports whether the segment ends in zeros that hold no data.
func (sc *segScan) zeroTail() bool { return sc.dataEnd < sc.size }

// checkSegment reads every record of s, changing nothing.
func checkSegment(s *segment) (segScan, error) {
	fi, err := s.r.Stat()
	if err != nil {
		return segScan{}, fmt.Errorf("eventlog: stat segment %s: %w", s.name, err)
	}
	sc := segScan{size: fi.Size(), dataEnd: fi.Size(), commitEnd: segmentHeaderSize, commitNext: s.base}
	hdr := make([]byte, segmentHeaderSize)
	n, _ := s.r.ReadAt(hdr, 0)
	if sc.headerErr = checkSegmentHeader(hdr[:n], s.base); sc.headerErr != nil {
		return sc, nil
	}
	v := &view{head: math.MaxUint64, segs: []*segment{s}, end: sc.size}
	c := &cursor{seg: s, next: s.base, off: segmentHeaderSize}
	var pts []sparsePoint
	var records uint64
	for len(c.buf) > 0 || c.off < sc.size {
		var r event.Record
		off, flags, _, err := c.readFrame(v, &r)
		if err != nil {
			if !errors.As(err, &sc.bad) {
				return sc, err
			}
			// A preallocated tail: zeros to the end, where the writer had
			// not written yet. (A zero length is never a valid frame.)
			if zero, zerr := allZero(s.r, sc.bad.Offset, sc.size); zerr != nil {
				return sc, zerr
			} else if zero {
				sc.dataEnd, sc.bad = sc.bad.Offset, nil
			}
			break
		}
		records++
		if sparseWants(r.Position, s.base) {
			pts = append(pts, sparsePoint{pos: r.Position, off: off})
		}
		if flags&flagCommit != 0 {
			sc.commitEnd, sc.commitNext = c.off, c.next
		}
	}
	sc.records = records
	for _, p := range pts {
		if p.pos < sc.commitNext {
			sc.points = append(sc.points, p)
		}
	}
	return sc, nil
}

// damage says why a segment that is not clean cannot be repaired by
// truncation, or returns nil when what follows its last complete append is
// a torn write. synced is the last position known to have been fsynced
// (indexMeta.synced): losing it is never a torn write.
func damage(s *segment, sc *segScan, isLast bool, synced uint64) error {
	switch {
	case sc.headerErr != nil && (!isLast || sc.size > segmentHeaderSize):
		return &CorruptionError{Segment: s.name, Offset: 0, Reason: sc.headerErr.Error()}
	case sc.headerErr != nil:
		return nil // creation was interrupted before anything depended on it
	case !isLast && sc.bad != nil:
		return sc.bad
	case !isLast && sc.zeroTail():
		return &CorruptionError{Segment: s.name, Offset: sc.dataEnd, Reason: "sealed segment ends in zeros"}
	case !isLast:
		return &CorruptionError{Segment: s.name, Offset: sc.commitEnd, Reason: "sealed segment ends inside an append"}
	case sc.bad != nil && sc.commitNext <= synced:
		return sc.bad
	case sc.bad != nil:
		if off, ok := validFrameAfter(s.r, sc.bad.Offset+1, sc.size); ok {
			bad := *sc.bad
			bad.Reason += fmt.Sprintf(" (an intact record follows at offset %d, so this is not a torn write)", off)
			return &bad
		}
	}
	return nil
}

// scanSegment checks s during recovery and returns the position after its
// last record and the offset after it. A torn tail of the last segment is
// truncated; anything else that is not clean fails. Records the index has
// not seen become sparse points (loadSparse loaded the others).
func (l *Log) scanSegment(s *segment, isLast bool, meta indexMeta) (next uint64, end int64, err error) {
	sc, err := checkSegment(s)
	if err != nil {
		return 0, 0, err
	}
	if !sc.clean() {
		if err := damage(s, &sc, isLast, meta.synced); err != nil {
			return 0, 0, err
		}
		if sc.headerErr != nil {
			l.opts.Logger.Warn("eventlog: rewriting the header of an empty segment", "segment", s.name, "reason", sc.headerErr)
			if err := rewriteHeader(s, l.opts.Now()); err != nil {
				return 0, 0, err
			}
			return s.base, segmentHeaderSize, nil
		}
		l.opts.Logger.Warn("eventlog: truncating torn tail", "segment", s.name, "from", sc.commitEnd, "size", sc.size)
		if err := truncateSegment(s, sc.commitEnd); err != nil {
			return 0, 0, err
		}
	}
	for _, p := range sc.points {
		if p.pos > meta.indexed {
			l.sparse.add(p)
		}
	}
	return sc.commitNext, sc.commitEnd, nil
}

func truncateSegment(s *segment, size int64) error {
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("eventlog: open segment to truncate: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("eventlog: truncate torn tail: %w", err)
	}
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("eventlog: sync after truncation: %w", err)
	}
	return nil
}

// allZero reports whether r holds only zero bytes in [from, size).
func allZero(r io.ReaderAt, from, size int64) (bool, error) {
	buf := make([]byte, len(zeroChunk))
	for off := from; off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("eventlog: read segment tail: %w", err)
		}
		if !bytes.Equal(buf[:n], zeroChunk[:n]) {
			return false, nil
		}
		off += n
	}
	return true, nil
}

// validFrameAfter looks for any intact frame starting in [from, size).
func validFrameAfter(r io.ReaderAt, from, size int64) (int64, bool) {
	if from >= size {
		return 0, false
	}
	buf := make([]byte, size-from)
	n, _ := r.ReadAt(buf, from)
	buf = buf[:n]
	var rec event.Record
	for i := 0; i+frameHeaderSize+bodyFixedSize <= len(buf); i++ {
		fl, err := frameLen(buf[i:], maxBody)
		if err != nil || i+fl > len(buf) {
			continue
		}
		if _, _, err := decodeFrame(buf[i:], maxBody, &rec); err == nil {
			return from + int64(i), true
		}
	}
	return 0, false
}

func rewriteHeader(s *segment, now time.Time) error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("eventlog: rewrite segment header: %w", err)
	}
	defer f.Close()
	h := encodeSegmentHeader(s.base, now)
	if _, err := f.Write(h); err != nil {
		return fmt.Errorf("eventlog: rewrite segment header: %w", err)
	}
	return fdatasync(f)
}
