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
// non-decreasing time, as an ordered stream pushes them, go to a FIFO in
// O(1); only out-of-order ones pay for the heap. Entries are never removed
// early: an owner that moves its timer pushes a new one and ignores the stale
// one when it comes out (valid).
type timerQueue[K any] struct {
	fifo    []timer[K]
	head    int // fifo[head:] are queued
	heap    []timer[K]
	lastAt  int64 // at of the newest fifo entry
	seq     uint64
	started bool
}

func (q *timerQueue[K]) len() int { return len(q.fifo) - q.head + len(q.heap) }

// push queues a timer and returns its sequence number.
func (q *timerQueue[K]) push(at int64, k K) uint64 {
	q.seq++
	t := timer[K]{at: at, seq: q.seq, k: k}
	if !q.started || at >= q.lastAt || q.head == len(q.fifo) {
		q.started, q.lastAt = true, at
		if q.head > 0 && q.head == len(q.fifo) {
			q.fifo, q.head = q.fifo[:0], 0
		}
		q.fifo = append(q.fifo, t)
		return q.seq
	}
	q.heap = append(q.heap, t)
	q.up(len(q.heap) - 1)
	return q.seq
}

// peek returns the earliest timer, if any.
func (q *timerQueue[K]) peek() (*timer[K], bool) {
	var f, h *timer[K]
	if q.head < len(q.fifo) {
		f = &q.fifo[q.head]
	}
	if len(q.heap) > 0 {
		h = &q.heap[0]
	}
	switch {
	case f == nil && h == nil:
		return nil, false
	case f == nil:
		return h, true
	case h == nil || f.before(h):
		return f, true
	default:
		return h, true
	}
}

// pop removes and returns the earliest timer; the queue must not be empty.
func (q *timerQueue[K]) pop() timer[K] {
	if q.head < len(q.fifo) && (len(q.heap) == 0 || q.fifo[q.head].before(&q.heap[0])) {
		t := q.fifo[q.head]
		var zero timer[K]
		q.fifo[q.head] = zero // let k go
		q.head++
		if q.head == len(q.fifo) {
			q.fifo, q.head = q.fifo[:0], 0
		} else if q.head > 1024 && q.head > len(q.fifo)/2 {
			n := copy(q.fifo, q.fifo[q.head:])
			clear(q.fifo[n:])
			q.fifo, q.head = q.fifo[:n], 0
		}
		return t
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
