package pgstore

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// groupCall is the arguments of one strata_append_group call: several
// appends, each to a different stream, their events one after another.
type groupCall struct {
	streams  []string
	kinds    []int32
	expected []int64
	userIDs  []bool
	counts   []int32

	ids      []pgtype.UUID
	types    []string
	schemas  []int32
	data     [][]byte
	metadata [][]byte
}

// inCalls orders a group for strata_append_group and splits it into calls:
// the first append to every stream goes in the first call, the second
// append to a stream in the second, and so on. A call's streams are then
// distinct, and a stream's later appends, in later statements of the same
// transaction, see its earlier ones. Within a call the appends are sorted
// by stream, so that concurrent groups of different processes wait for
// each other's rows in one order, which rules out most deadlocks between
// them. The appends of a group are concurrent, so any order that keeps
// each stream's appends in their order is a valid one.
//
// The returned order is the order of the group's rows in its transaction
// (calls in order, a call's appends in order): settle relies on it.
func inCalls(group []*appendReq) (ordered []*appendReq, calls [][]*appendReq) {
	ordered = slices.Clone(group)
	slices.SortStableFunc(ordered, func(a, b *appendReq) int { return strings.Compare(a.stream, b.stream) })
	rank := make(map[*appendReq]int, len(ordered))
	n := 0
	for i, r := range ordered {
		if i > 0 && ordered[i-1].stream == r.stream {
			rank[r] = rank[ordered[i-1]] + 1
			n = max(n, rank[r])
		}
	}
	if n > 0 {
		slices.SortStableFunc(ordered, func(a, b *appendReq) int { return rank[a] - rank[b] })
	}
	for start := 0; start < len(ordered); {
		end := start + 1
		for end < len(ordered) && rank[ordered[end]] == rank[ordered[start]] {
			end++
		}
		calls = append(calls, ordered[start:end:end])
		start = end
	}
	return ordered, calls
}

// newGroupCall builds the arguments of one call for appends (distinct
// streams).
func newGroupCall(appends []*appendReq) *groupCall {
	events := 0
	for _, r := range appends {
		events += len(r.ids)
	}
	c := &groupCall{
		streams:  make([]string, 0, len(appends)),
		kinds:    make([]int32, 0, len(appends)),
		expected: make([]int64, 0, len(appends)),
		userIDs:  make([]bool, 0, len(appends)),
		counts:   make([]int32, 0, len(appends)),
		ids:      make([]pgtype.UUID, 0, events),
		types:    make([]string, 0, events),
		schemas:  make([]int32, 0, events),
		data:     make([][]byte, 0, events),
		metadata: make([][]byte, 0, events),
	}
	for _, r := range appends {
		kind, v := expectedArgs(r.expected)
		c.streams = append(c.streams, r.stream)
		c.kinds = append(c.kinds, kind)
		c.expected = append(c.expected, v)
		c.userIDs = append(c.userIDs, r.userIDs)
		c.counts = append(c.counts, int32(len(r.ids)))
		c.ids = append(c.ids, r.ids...)
		c.types = append(c.types, r.types...)
		c.schemas = append(c.schemas, r.schemas...)
		c.data = append(c.data, r.data...)
		c.metadata = append(c.metadata, r.metadata...)
	}
	return c
}

// args returns strata_append_group's arguments.
func (c *groupCall) args() []any {
	return []any{c.streams, c.kinds, c.expected, c.userIDs, c.counts, c.ids, c.types, c.schemas, c.data, c.metadata}
}
