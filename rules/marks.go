package rules

import (
	"slices"
	"sync"
)

// Marks tie the log's positions to transaction time, so that a rule change
// replays only the stretch of history its new windows reach back over, and
// an amendment reads a user's stream back only as far as the late
// transaction's time. A mark {Pos, T} says that every transaction recorded
// at or before Pos has a time at or before T. Positions are in log order and
// times are not (transactions come late), so T is the latest time up to
// Pos, not the time at Pos; a mark may overstate it, which costs a longer
// read, never a missed transaction.

// mark is one tie (exported fields: checkpoints hold them).
type mark struct {
	Pos uint64
	T   int64
}

// markEvery is how many decisions apart marks are taken, and maxMarks how
// many are kept: past it, every other mark of the older half goes, so that
// recent history (where amendments read) stays finely marked and the
// oldest (where only a rule change with a long window reads) coarsely.
var (
	markEvery = 64
	maxMarks  = 8192
)

type marks struct {
	mu   sync.Mutex
	list []mark
}

// add records a mark after the last one (an older or equal position adds
// nothing: the list stays sorted by both fields).
func (m *marks) add(pos uint64, t int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.list); n > 0 {
		last := m.list[n-1]
		if pos <= last.Pos {
			return
		}
		// A later mark never says less than an earlier one: the latest
		// time up to a position only grows.
		t = max(t, last.T)
	}
	m.list = append(m.list, mark{pos, t})
	if len(m.list) > maxMarks {
		half := len(m.list) / 2
		kept := m.list[:0]
		for i, x := range m.list[:half] {
			if i%2 == 1 {
				kept = append(kept, x)
			}
		}
		m.list = append(kept, m.list[half:]...)
	}
}

// atOrBefore returns the newest mark whose time is at or before t: every
// transaction recorded at or before its position is at or before t. The
// zero mark when none is (read from the log's start).
func (m *marks) atOrBefore(t int64) mark {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, _ := slices.BinarySearchFunc(m.list, t, func(x mark, t int64) int {
		if x.T <= t {
			return -1
		}
		return 1
	})
	if i == 0 {
		return mark{T: noTime}
	}
	return m.list[i-1]
}

func (m *marks) snapshot() []mark {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list)
}

func (m *marks) reset(list []mark) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = list
}
