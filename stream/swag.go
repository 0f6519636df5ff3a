package stream

// swag is a sliding-window aggregation: a FIFO of partial aggregates whose
// total it answers at any time. With a Retracting aggregator it keeps a
// running total (push merges, pop retracts: O(1)); otherwise it is a
// two-stacks queue (O(1) amortized: each value is merged into a suffix
// aggregate once, when the back stack is flipped onto the front).
type swag[A any] struct {
	init  func() A
	merge func(a, b A) A
	ret   func(a, b A) A // nil: two stacks

	// running total (ret != nil)
	total A
	vals  deque[A]

	// two stacks (ret == nil): front[i] is the aggregate of the front
	// stack's values from i up (front[len-1] is the oldest value's, so it
	// covers the whole front); back holds raw values, backAgg their total.
	front   []A
	back    []A
	backAgg A
	n       int
}

func newSwag[A any](init func() A, merge func(a, b A) A, ret func(a, b A) A) swag[A] {
	s := swag[A]{init: init, merge: merge, ret: ret}
	s.total, s.backAgg = init(), init()
	return s
}

func (s *swag[A]) len() int {
	if s.ret != nil {
		return s.vals.len()
	}
	return s.n
}

func (s *swag[A]) push(x A) {
	if s.ret != nil {
		s.total = s.merge(s.total, x)
		s.vals.push(x)
		return
	}
	s.back = append(s.back, x)
	s.backAgg = s.merge(s.backAgg, x)
	s.n++
}

// pop removes the oldest value; the queue must not be empty.
func (s *swag[A]) pop() {
	if s.ret != nil {
		s.total = s.ret(s.total, s.vals.pop())
		return
	}
	if len(s.front) == 0 {
		// Flip: newest first, so each suffix aggregate merges an older
		// value in front of the newer ones' aggregate.
		for i := len(s.back) - 1; i >= 0; i-- {
			agg := s.merge(s.init(), s.back[i])
			if len(s.front) > 0 {
				agg = s.merge(agg, s.front[len(s.front)-1])
			}
			s.front = append(s.front, agg)
		}
		clear(s.back)
		s.back, s.backAgg = s.back[:0], s.init()
	}
	var zero A
	s.front[len(s.front)-1] = zero
	s.front = s.front[:len(s.front)-1]
	s.n--
}

// query returns the aggregate of every value queued, oldest first. The
// result is the swag's own for running totals: callers read it (Result)
// before the next push or pop.
func (s *swag[A]) query() A {
	if s.ret != nil {
		return s.total
	}
	if len(s.front) == 0 {
		return s.backAgg
	}
	return s.merge(s.merge(s.init(), s.front[len(s.front)-1]), s.backAgg)
}

func (s *swag[A]) reset() {
	s.vals.reset()
	clear(s.front)
	clear(s.back)
	s.front, s.back = s.front[:0], s.back[:0]
	s.total, s.backAgg, s.n = s.init(), s.init(), 0
}
