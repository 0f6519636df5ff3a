package stream

// Watermarks generates a watermark from several inputs (the partitions of
// a topic, the logs of several nodes) by bounded out-of-orderness: each
// input's watermark is the largest event time it has shown − MaxOutOfOrder
// − 1, and the combined watermark is the least over the inputs that are not
// idle. An input that is caught up with its head and waits is idle: it
// cannot hold everyone back, since anything it sends later is judged
// against the watermark as it then is (late, if the others moved it past).
// With every input idle the watermark holds; it never goes back.
//
// An input that has shown nothing and is not idle holds the watermark at
// its start: until every input has spoken (or been declared idle) no
// window can be known complete.
type Watermarks struct {
	bound   int64
	in      []wmInput
	current int64
}

type wmInput struct {
	max  int64 // largest event time seen (MinTime-1 before any)
	idle bool
}

// NewWatermarks returns a generator over n inputs.
func NewWatermarks(n int, maxOutOfOrder int64) *Watermarks {
	w := &Watermarks{bound: maxOutOfOrder, in: make([]wmInput, n), current: noWatermark}
	for i := range w.in {
		w.in[i].max = noWatermark
	}
	return w
}

// Current returns the combined watermark.
func (w *Watermarks) Current() int64 { return w.current }

// Observe records an event of input i at time t (the input is then active)
// and returns the combined watermark and whether it advanced.
func (w *Watermarks) Observe(i int, t int64) (int64, bool) {
	in := &w.in[i]
	in.idle = false
	if t > in.max {
		in.max = t
	}
	return w.recompute()
}

// SetIdle marks input i idle (caught up and waiting) or active again, and
// returns the combined watermark and whether it advanced.
func (w *Watermarks) SetIdle(i int, idle bool) (int64, bool) {
	w.in[i].idle = idle
	return w.recompute()
}

func (w *Watermarks) recompute() (int64, bool) {
	least, any := int64(0), false
	for _, in := range w.in {
		if in.idle {
			continue
		}
		wm := noWatermark
		if in.max != noWatermark {
			wm = in.max - w.bound - 1
		}
		if !any || wm < least {
			least, any = wm, true
		}
	}
	if any && least > w.current {
		w.current = least
		return least, true
	}
	return w.current, false
}
