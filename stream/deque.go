package stream

// deque is a FIFO over a slice: pop moves a head index forward, and the
// slice is compacted in place once more than half of it is popped, so a
// queue in a steady state neither allocates nor grows. The swag's values,
// the timer lanes and the panes of a sliding window's running aggregate all
// queue this way.
type deque[T any] struct {
	s    []T
	head int // s[head:] are queued
}

func (d *deque[T]) len() int  { return len(d.s) - d.head }
func (d *deque[T]) push(x T)  { d.s = append(d.s, x) }
func (d *deque[T]) front() *T { return &d.s[d.head] }

// pop removes and returns the oldest value; the deque must not be empty.
func (d *deque[T]) pop() T {
	x := d.s[d.head]
	var zero T
	d.s[d.head] = zero // let what it refers to go
	d.head++
	if d.head == len(d.s) {
		d.s, d.head = d.s[:0], 0
	} else if d.head > 64 && d.head > len(d.s)/2 {
		n := copy(d.s, d.s[d.head:])
		clear(d.s[n:])
		d.s, d.head = d.s[:n], 0
	}
	return x
}

func (d *deque[T]) reset() {
	clear(d.s)
	d.s, d.head = d.s[:0], 0
}
