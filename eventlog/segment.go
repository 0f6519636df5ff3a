package eventlog

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	segmentHeaderSize = 32
	segmentMagic      = "STRSEG01"
	segmentExt        = ".seg"
)

// segment is one segment file as readers see it. base and the read handle
// never change; size is set once, by the writer, when the segment is sealed,
// before any view that lists a later segment is published.
type segment struct {
	base uint64
	name string
	path string
	r    *os.File // shared read handle: ReadAt only
	size int64    // final size once sealed; 0 while active
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentExt) }

// listSegments returns the segment files in dir ordered by base position.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []uint64
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		b, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil || segmentName(b) != name {
			return nil, fmt.Errorf("eventlog: unexpected file %q in %s", name, dir)
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

func encodeSegmentHeader(base uint64, created time.Time) []byte {
	h := make([]byte, segmentHeaderSize)
	copy(h, segmentMagic)
	binary.LittleEndian.PutUint64(h[8:], base)
	binary.LittleEndian.PutUint64(h[16:], uint64(created.UnixNano()))
	binary.LittleEndian.PutUint32(h[28:], crc(h[:28]))
	return h
}

// checkSegmentHeader validates h against the base position the file name
// promises.
func checkSegmentHeader(h []byte, base uint64) error {
	if len(h) < segmentHeaderSize {
		return fmt.Errorf("header is %d bytes, want %d", len(h), segmentHeaderSize)
	}
	if string(h[:8]) != segmentMagic {
		return fmt.Errorf("bad magic %q", h[:8])
	}
	if got, want := crc(h[:28]), binary.LittleEndian.Uint32(h[28:]); got != want {
		return fmt.Errorf("header crc mismatch: stored %08x, computed %08x", want, got)
	}
	if b := binary.LittleEndian.Uint64(h[8:]); b != base {
		return fmt.Errorf("header says base position %d, file name says %d", b, base)
	}
	return nil
}

// createSegment makes a new, durable, empty segment: the header is fsynced
// and so is the directory entry, so a crash never leaves a segment that later
// records depend on but whose existence was not persisted. The file is
// allocated to size up front (it reads as zeros past the header; recovery
// knows a zero tail from data, and sealing cuts it).
func createSegment(dir string, base uint64, now time.Time, size int64) (w *os.File, seg *segment, err error) {
	path := filepath.Join(dir, segmentName(base))
	w, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("eventlog: create segment: %w", err)
	}
	defer func() {
		if err != nil {
			w.Close()
			os.Remove(path)
		}
	}()
	if _, err = w.Write(encodeSegmentHeader(base, now)); err != nil {
		return nil, nil, fmt.Errorf("eventlog: write segment header: %w", err)
	}
	_ = allocate(w, size) // an optimisation only: writes are correct without it
	if err = fdatasync(w); err != nil {
		return nil, nil, fmt.Errorf("eventlog: sync segment header: %w", err)
	}
	if err = syncDir(dir); err != nil {
		return nil, nil, err
	}
	seg, err = openSegmentReader(dir, base)
	if err != nil {
		return nil, nil, err
	}
	return w, seg, nil
}

func openSegmentReader(dir string, base uint64) (*segment, error) {
	name := segmentName(base)
	path := filepath.Join(dir, name)
	r, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open segment: %w", err)
	}
	return &segment{base: base, name: name, path: path, r: r}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("eventlog: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("eventlog: sync dir: %w", err)
	}
	return nil
}
