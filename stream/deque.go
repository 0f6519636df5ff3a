package stream

// deque is a FIFO over a circular buffer whose size is a power of two,
// addressed by absolute position: the n-th value ever pushed is at position
// n until it is popped, whatever the buffer did meanwhile. Lookback keeps
// positions into its key's events (what fired, what each span's window
// starts at) that way, with no index to fix up when old events go. A queue
// in a steady state neither allocates nor copies: the buffer doubles when
// full and halves when three quarters empty, so it holds at most four times
// what is queued (or 64 slots). The swag's values, the timer lanes, the panes of a
// sliding window and a lookback key's events all queue this way.
type deque[T any] struct {
	buf        []T
	head, tail int // positions of the oldest value and one past the newest
}

// minDeque is the first buffer's size; a deque shrinks no smaller than
// shrinkFloor, so that a small queue going up and down by a few values (a
// timer lane, say) does not resize at every turn.
const (
	minDeque    = 8
	shrinkFloor = 64
)

func (d *deque[T]) len() int      { return d.tail - d.head }
func (d *deque[T]) at(i int) *T   { return &d.buf[i&(len(d.buf)-1)] }
func (d *deque[T]) front() *T     { return d.at(d.head) }
func (d *deque[T]) grow()         { d.resize(max(minDeque, 2*len(d.buf))) }
func (d *deque[T]) full() bool    { return d.tail-d.head == len(d.buf) }
func (d *deque[T]) empty() bool   { return d.tail == d.head }
func (d *deque[T]) reset()        { clear(d.buf); d.head, d.tail = 0, 0 }
func (d *deque[T]) pos(i int) int { return i & (len(d.buf) - 1) }

func (d *deque[T]) push(x T) {
	if d.full() {
		d.grow()
	}
	*d.at(d.tail) = x
	d.tail++
}

// insert puts x at position i (head ≤ i ≤ tail), moving the values from i
// on one position later.
func (d *deque[T]) insert(i int, x T) {
	if d.full() {
		d.grow()
	}
	for j := d.tail; j > i; j-- {
		*d.at(j) = *d.at(j - 1)
	}
	*d.at(i) = x
	d.tail++
}

// pop removes and returns the oldest value; the deque must not be empty.
func (d *deque[T]) pop() T {
	p := d.at(d.head)
	x := *p
	var zero T
	*p = zero // let what it refers to go
	d.head++
	if n := len(d.buf); n > shrinkFloor && d.tail-d.head < n/4 {
		d.resize(n / 2)
	}
	return x
}

// resize moves the queued values into a new buffer of n (a power of two, at
// least len) slots, each to the slot of its position.
func (d *deque[T]) resize(n int) {
	nb := make([]T, n)
	if d.head < d.tail {
		// At most two runs in the old buffer, each landing in at most two
		// runs of the new one: copy run by run rather than slot by slot.
		for i := d.head; i < d.tail; {
			from := d.pos(i)
			to := i & (n - 1)
			run := min(d.tail-i, len(d.buf)-from, n-to)
			copy(nb[to:to+run], d.buf[from:from+run])
			i += run
		}
	}
	d.buf = nb
}
