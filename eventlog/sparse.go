package eventlog

import (
	"sort"
	"sync"
)

// sparseEvery is the distance in positions between two points of the sparse
// position→offset index: seeking to a position scans at most this many
// records. Every segment's first record is a point too.
const sparseEvery = 1024

// sparseIndex maps a sample of positions to their offsets within their
// segment. It covers the whole log in memory (16 bytes per sparseEvery
// records: ~2 MB for a billion events) and is persisted with the stream
// index so that opening a large log does not rescan it.
type sparseIndex struct {
	mu struct {
		sync.RWMutex
		points []sparsePoint // ascending pos
	}
}

type sparsePoint struct {
	pos uint64
	off int64
}

// wants reports whether pos should be a point, given the base position of
// its segment.
func sparseWants(pos, segBase uint64) bool { return pos == segBase || pos%sparseEvery == 0 }

func (s *sparseIndex) add(pts ...sparsePoint) {
	if len(pts) == 0 {
		return
	}
	s.mu.Lock()
	s.mu.points = append(s.mu.points, pts...)
	s.mu.Unlock()
}

// floor returns the last point at or before pos.
func (s *sparseIndex) floor(pos uint64) (uint64, int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	pts := s.mu.points
	i := sort.Search(len(pts), func(i int) bool { return pts[i].pos > pos })
	if i == 0 {
		return 0, 0, false
	}
	return pts[i-1].pos, pts[i-1].off, true
}

// truncateAfter drops points after pos (recovery may cut the tail).
func (s *sparseIndex) truncateAfter(pos uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pts := s.mu.points
	i := sort.Search(len(pts), func(i int) bool { return pts[i].pos > pos })
	s.mu.points = pts[:i]
}

func (s *sparseIndex) last() (sparsePoint, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.mu.points) == 0 {
		return sparsePoint{}, false
	}
	return s.mu.points[len(s.mu.points)-1], true
}
