package stream

// Aggregator folds a window's values of type V into an accumulator A and
// reads a result R from it. Accumulators are values the engine owns:
//
//   - Add and Merge may modify and return their first argument (the engine
//     never passes one it still needs); Merge must not modify b.
//   - Result must not alias storage a later Add or Merge could change.
//
// Aggregators that can also take a value back out implement Retracting:
// sliding and lookback windows then keep a running result in O(1) per event;
// for the others they keep a two-stacks queue of partial results.
type Aggregator[V, A, R any] interface {
	Init() A
	Add(acc A, t int64, v V) A
	Merge(a, b A) A
	Result(acc A) R
}

// Retracting is an Aggregator that can undo a Merge: Retract(Merge(a, b), b)
// equals a.
type Retracting[A any] interface {
	Retract(a, b A) A
}

// Elem is one event's value and time, as List and First/Last keep them.
type Elem[V any] struct {
	Time  int64 `json:"ts"`
	Value V     `json:"value"`
}

// Count counts events.
type Count[V any] struct{}

func (Count[V]) Init() int64                       { return 0 }
func (Count[V]) Add(acc int64, _ int64, _ V) int64 { return acc + 1 }
func (Count[V]) Merge(a, b int64) int64            { return a + b }
func (Count[V]) Retract(a, b int64) int64          { return a - b }
func (Count[V]) Result(acc int64) int64            { return acc }

// distinctAcc counts each value's occurrences, so that it can retract.
type distinctAcc[V comparable] map[V]int64

// Distinct counts distinct values.
type Distinct[V comparable] struct{}

func (Distinct[V]) Init() distinctAcc[V] { return nil }
func (Distinct[V]) Add(acc distinctAcc[V], _ int64, v V) distinctAcc[V] {
	if acc == nil {
		acc = distinctAcc[V]{}
	}
	acc[v]++
	return acc
}
func (Distinct[V]) Merge(a, b distinctAcc[V]) distinctAcc[V] {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = make(distinctAcc[V], len(b))
	}
	for v, n := range b {
		a[v] += n
	}
	return a
}
func (Distinct[V]) Retract(a, b distinctAcc[V]) distinctAcc[V] {
	for v, n := range b {
		if a[v] -= n; a[v] <= 0 {
			delete(a, v)
		}
	}
	return a
}
func (Distinct[V]) Result(acc distinctAcc[V]) int64 { return int64(len(acc)) }

// List keeps every element, ordered by time (ties in arrival order).
type List[V any] struct{}

func (List[V]) Init() []Elem[V] { return nil }
func (List[V]) Add(acc []Elem[V], t int64, v V) []Elem[V] {
	// Nearly always an append: events mostly arrive in time order.
	i := len(acc)
	for i > 0 && acc[i-1].Time > t {
		i--
	}
	acc = append(acc, Elem[V]{})
	copy(acc[i+1:], acc[i:])
	acc[i] = Elem[V]{Time: t, Value: v}
	return acc
}
func (List[V]) Merge(a, b []Elem[V]) []Elem[V] {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 || a[len(a)-1].Time <= b[0].Time {
		return append(a, b...)
	}
	out := make([]Elem[V], 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if b[j].Time < a[i].Time {
			out = append(out, b[j])
			j++
		} else {
			out = append(out, a[i])
			i++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
func (List[V]) Result(acc []Elem[V]) []Elem[V] { return append([]Elem[V](nil), acc...) }

// firstLast is the earliest and latest element seen.
type firstLast[V any] struct {
	Set         bool
	First, Last Elem[V]
}

func (firstLast[V]) add(acc firstLast[V], e Elem[V]) firstLast[V] {
	if !acc.Set {
		return firstLast[V]{Set: true, First: e, Last: e}
	}
	if e.Time < acc.First.Time {
		acc.First = e
	}
	if e.Time >= acc.Last.Time {
		acc.Last = e
	}
	return acc
}

func mergeFirstLast[V any](a, b firstLast[V]) firstLast[V] {
	if !b.Set {
		return a
	}
	if !a.Set {
		return b
	}
	if b.First.Time < a.First.Time {
		a.First = b.First
	}
	if b.Last.Time >= a.Last.Time {
		a.Last = b.Last
	}
	return a
}

// firstLastAgg is what First and Last share: they keep the same
// accumulator and differ only in the value they read from it.
type firstLastAgg[V any] struct{}

func (firstLastAgg[V]) Init() firstLast[V] { return firstLast[V]{} }
func (firstLastAgg[V]) Add(acc firstLast[V], t int64, v V) firstLast[V] {
	return acc.add(acc, Elem[V]{t, v})
}
func (firstLastAgg[V]) Merge(a, b firstLast[V]) firstLast[V] { return mergeFirstLast(a, b) }

// First is the value of the earliest event (the first to arrive among
// equals).
type First[V any] struct{ firstLastAgg[V] }

func (First[V]) Result(acc firstLast[V]) V { return acc.First.Value }

// Last is the value of the latest event (the last to arrive among equals).
type Last[V any] struct{ firstLastAgg[V] }

func (Last[V]) Result(acc firstLast[V]) V { return acc.Last.Value }
