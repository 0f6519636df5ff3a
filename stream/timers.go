package stream

// timer asks for k to be visited once the watermark reaches at.
type timer[K any] struct {
	at  int64
	seq uint64 // push order: ties fire in it, so firing order is deterministic
	k   K
}

func (a *timer[K]) before(b *timer[K]) bool {
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

// timerQueue is a priority queue of timers by (at, seq). Timers pushed in
// non-decreasing time within their lane, as an ordered stream pushes them,
// go to that lane's FIFO in O(1); only out-of-order ones pay for the heap.
// Lanes keep kinds of timers that are each ordered but far apart (a
// window's firing now, its cleanup much later) from pushing each other into
// the heap. Entries are never removed early: an owner that moves its timer
// pushes a new one and ignores the stale one when it comes out.
type timerQueue[K any] struct {
	lanes [lanes]fifo[K]
	heap  []timer[K]
	seq   uint64
}

const (
	fireLane = iota
	cleanupLane
	lanes
)

type fifo[K any] struct {
	deque[timer[K]]
	lastAt  int64 // at of the newest entry
	started bool
}

// push queues a timer in a lane and returns its sequence number.
func (q *timerQueue[K]) push(lane int, at int64, k K) uint64 {
	q.seq++
	t := timer[K]{at: at, seq: q.seq, k: k}
	f := &q.lanes[lane]
	if !f.started || at >= f.lastAt || f.len() == 0 {
		f.started, f.lastAt = true, at
		f.push(t)
		return q.seq
	}
	q.heap = append(q.heap, t)
	q.up(len(q.heap) - 1)
	return q.seq
}

// min returns where the earliest timer is: a lane, or lanes for the heap;
// -1 when the queue is empty.
func (q *timerQueue[K]) min() (int, *timer[K]) {
	best, where := (*timer[K])(nil), -1
	for i := range q.lanes {
		if l := &q.lanes[i]; l.len() > 0 && (best == nil || l.front().before(best)) {
			best, where = l.front(), i
		}
	}
	if len(q.heap) > 0 && (best == nil || q.heap[0].before(best)) {
		best, where = &q.heap[0], lanes
	}
	return where, best
}

// popFrom removes the earliest timer, which min said is in where.
func (q *timerQueue[K]) popFrom(where int) timer[K] {
	if where < lanes {
		return q.lanes[where].pop()
	}
	t := q.heap[0]
	last := len(q.heap) - 1
	q.heap[0] = q.heap[last]
	var zero timer[K]
	q.heap[last] = zero
	q.heap = q.heap[:last]
	if last > 0 {
		q.down(0)
	}
	return t
}

func (q *timerQueue[K]) up(i int) {
	h := q.heap
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *timerQueue[K]) down(i int) {
	h := q.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// due pops the timers due at watermark w, earliest first, and hands each
// to visit (which may push more).
func (q *timerQueue[K]) due(w int64, visit func(timer[K])) {
	for {
		where, t := q.min()
		if t == nil || t.at > w {
			return
		}
		visit(q.popFrom(where))
	}
}

// keyTimer is a key's handle on one pending timer of a timerQueue: the
// queue's entry is the timer only while the handle still holds its seq
// (a moved or cancelled timer leaves a stale entry behind, ignored).
type keyTimer struct {
	at    int64
	seq   uint64
	armed bool
}

// arm sets t to at in lane, unless it is already set there.
func arm[K any](t *keyTimer, q *timerQueue[K], lane int, at int64, k K) {
	if t.armed && t.at == at {
		return
	}
	t.at, t.armed = at, true
	t.seq = q.push(lane, at, k)
}

// take reports whether the popped entry seq is t's timer, disarming it.
func (t *keyTimer) take(seq uint64) bool {
	if !t.armed || t.seq != seq {
		return false
	}
	t.armed = false
	return true
}
