package stream

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Result is one firing of one key's window.
type Result[R any] struct {
	Key    string
	Window Window
	Value  R
	// Firing counts the window's firings before this one: 0 for its first,
	// n for the n-th time a late event made it fire again.
	Firing uint32
}

// ID identifies the firing deterministically (key, window, firing): a run
// restarted from a checkpoint emits results with the same IDs as the
// uninterrupted run did, so a sink can drop the ones it already has.
func (r *Result[R]) ID() string {
	b := make([]byte, 0, len(r.Key)+48)
	b = strconv.AppendQuote(b, r.Key)
	b = append(b, '/')
	b = strconv.AppendInt(b, r.Window.Start, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, r.Window.End, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(r.Firing), 10)
	return string(b)
}

// Stats counts what an Engine has done.
type Stats struct {
	Events    uint64 // events taken into windows
	Late      uint64 // events later than the allowed lateness: reported late, not windowed
	Refires   uint64 // firings of windows caused by late (but allowed) events
	Results   uint64 // results emitted
	Keys      int    // keys holding state now
	Watermark int64  // the current watermark (MinTime-1 before the first)
}

// ErrTime is returned for an event whose timestamp is outside [MinTime,
// MaxTime].
var ErrTime = errors.New("stream: event time out of range")

// Engine windows keyed events. It is not safe for concurrent use: a runner
// gives each goroutine its own Engine over its own keys.
//
// The cycle: feed it with Event and Watermark; read what fired with Ready;
// call Advance once the results are handled (Ready's slice is reused).
type Engine[V, A, R any] struct {
	core[V, A, R]
	op operator[V]
}

// core is what every window kind shares.
type core[V, A, R any] struct {
	cfg   Config
	agg   Aggregator[V, A, R]
	ret   func(a, b A) A // nil unless agg is Retracting
	wm    int64
	out   []Result[R]
	stats Stats
}

type operator[V any] interface {
	// event takes an event whose time is in range; it reports late ones.
	event(key string, t int64, v V) (late bool)
	// advance fires and cleans up everything due at watermark w (already
	// stored in core.wm), in order of time.
	advance(w int64)
	numKeys() int
}

// New returns an engine windowing by cfg and aggregating with agg.
func New[V, A, R any](cfg Config, agg Aggregator[V, A, R]) (*Engine[V, A, R], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine[V, A, R]{core: core[V, A, R]{cfg: cfg, agg: agg, wm: noWatermark}}
	if r, ok := agg.(Retracting[A]); ok {
		e.ret = r.Retract
	}
	switch cfg.Kind {
	case Tumbling, Sliding:
		e.op = newAligned(&e.core)
	case Session:
		e.op = newSessions(&e.core)
	case Lookback:
		e.op = newLookback(&e.core)
	default:
		return nil, fmt.Errorf("%w: kind %v", ErrConfig, cfg.Kind)
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine[V, A, R]) Config() Config { return e.cfg }

// Event takes one event of key at time t. It reports late when the event is
// later than the allowed lateness (every window it belongs to has already
// been cleaned up): the event is then not windowed, and the caller sends it to
// its late output. An event late but within the allowed lateness fires the
// windows it reaches again, at once.
func (e *Engine[V, A, R]) Event(key string, t int64, v V) (late bool, err error) {
	if t < MinTime || t > MaxTime {
		return false, fmt.Errorf("%w: %d", ErrTime, t)
	}
	if e.op.event(key, t, v) {
		e.stats.Late++
		return true, nil
	}
	e.stats.Events++
	return false, nil
}

// ErrProbe is returned by Probe for a window kind it cannot answer.
var ErrProbe = errors.New("stream: probe answers lookback windows only")

// Probe appends to dst what key's lookback windows at instant t would hold
// if the extra events were added now (each in the windows its time falls
// in), one result per span (Firing 0), without adding them: the question an
// authorization asks before it decides ("would this transaction be the 11th
// in 60 s?"), or, with no extra event, what the windows hold. The engine's
// state and what it will output are unchanged. A time the engine would take
// as late (at or before the watermark less the allowed lateness) may be
// answered without events it has already forgotten.
func (e *Engine[V, A, R]) Probe(dst []Result[R], key string, t int64, extra ...Elem[V]) ([]Result[R], error) {
	if t < MinTime || t > MaxTime {
		return dst, fmt.Errorf("%w: %d", ErrTime, t)
	}
	l, ok := e.op.(*lookback[V, A, R])
	if !ok {
		return dst, fmt.Errorf("%w: %v", ErrProbe, e.cfg.Kind)
	}
	k := l.keys[key]
	l.probed = k
	for s, span := range l.spans {
		acc := e.agg.Init()
		if k != nil {
			acc = l.window(k, s, t)
		}
		for _, x := range extra {
			if x.Time > t-span && x.Time <= t {
				acc = e.agg.Add(acc, x.Time, x.Value)
			}
		}
		dst = append(dst, Result[R]{Key: key, Window: Window{t - span + 1, t + 1}, Value: e.agg.Result(acc)})
	}
	return dst, nil
}

// ProbeRange appends to dst what key's events in [from, t] would aggregate
// to with the extra events (those in the range) added, without adding them:
// one result, window [from, t+1), Firing 0. It answers windows that are not
// a fixed span back, such as "today so far" (from the start of the day),
// by folding the events in the range; the engine must still hold them (a
// lookback span at least t − from + 1 long, t not older than the lateness
// allows).
func (e *Engine[V, A, R]) ProbeRange(dst []Result[R], key string, from, t int64, extra ...Elem[V]) ([]Result[R], error) {
	if t < MinTime || t > MaxTime || from < MinTime || from > t {
		return dst, fmt.Errorf("%w: [%d, %d]", ErrTime, from, t)
	}
	l, ok := e.op.(*lookback[V, A, R])
	if !ok {
		return dst, fmt.Errorf("%w: %v", ErrProbe, e.cfg.Kind)
	}
	k := l.keys[key]
	l.probed = k
	acc := e.agg.Init()
	if k != nil {
		for i := l.first(k, from-1); i < k.elems.tail && k.elems.at(i).t <= t; i++ {
			x := k.elems.at(i)
			acc = e.agg.Add(acc, x.t, x.v)
		}
	}
	for _, x := range extra {
		if x.Time >= from && x.Time <= t {
			acc = e.agg.Add(acc, x.Time, x.Value)
		}
	}
	return append(dst, Result[R]{Key: key, Window: Window{from, t + 1}, Value: e.agg.Result(acc)}), nil
}

// SessionStart returns the start of key's session that holds instant t in
// a Lookback engine: the earliest time of the run of key's events (those
// it holds, and extra) that reaches back from t with no gap longer than
// gap between one and the next, at floor at the earliest; t itself when no
// event is that close. With ProbeRange from it to t, it gives a session
// window's aggregate so far — bounded by floor, since the engine keeps
// events only for its spans.
func (e *Engine[V, A, R]) SessionStart(key string, t, gap, floor int64, extra ...Elem[V]) (int64, error) {
	if t < MinTime || t > MaxTime || gap < 0 || floor > t {
		return 0, fmt.Errorf("%w: session of gap %d before %d from %d", ErrTime, gap, t, floor)
	}
	l, ok := e.op.(*lookback[V, A, R])
	if !ok {
		return 0, fmt.Errorf("%w: %v", ErrProbe, e.cfg.Kind)
	}
	// Walk back from t through the held events and extra (both newest
	// first), the later of the two each step.
	var xs []int64
	for _, x := range extra {
		if x.Time <= t && x.Time >= floor {
			xs = append(xs, x.Time)
		}
	}
	slices.Sort(xs)
	i, lo := -1, 0
	k := l.keys[key]
	if k != nil {
		lo = k.elems.head
		i = l.first(k, t) - 1 // the newest held event at or before t
	}
	start, prev := t, t
	for {
		var x int64
		switch {
		case i >= lo && (len(xs) == 0 || k.elems.at(i).t >= xs[len(xs)-1]):
			x = k.elems.at(i).t
			i--
		case len(xs) > 0:
			x = xs[len(xs)-1]
			xs = xs[:len(xs)-1]
		default:
			return start, nil
		}
		if x < floor || prev-x > gap {
			return start, nil
		}
		start, prev = x, x
	}
}

// Newest returns the time of the newest event key's lookback windows hold
// (false when none, or for another window kind).
func (e *Engine[V, A, R]) Newest(key string) (int64, bool) {
	l, ok := e.op.(*lookback[V, A, R])
	if !ok {
		return 0, false
	}
	k := l.probed
	if k == nil || k.key != key {
		k = l.keys[key]
	}
	if k == nil || k.elems.empty() {
		return 0, false
	}
	return k.last, true
}

// Watermark tells the engine no event with time ≤ w will come (more may, and
// are then late). Windows due fire, in order of time; a watermark that does
// not advance is ignored. EndOfInput fires and cleans up everything.
func (e *Engine[V, A, R]) Watermark(w int64) {
	w = min(w, maxWatermark)
	if w <= e.wm {
		return
	}
	e.wm = w
	e.op.advance(w)
}

// CurrentWatermark returns the last watermark taken.
func (e *Engine[V, A, R]) CurrentWatermark() int64 { return e.wm }

// Ready returns the results fired since the last Advance, in firing order.
// The slice is the engine's: it is valid until Advance.
func (e *Engine[V, A, R]) Ready() []Result[R] { return e.out }

// Advance acknowledges the results Ready returned.
func (e *Engine[V, A, R]) Advance() {
	clear(e.out)
	e.out = e.out[:0]
}

// Stats returns the engine's counters.
func (e *Engine[V, A, R]) Stats() Stats {
	s := e.stats
	s.Keys = e.op.numKeys()
	s.Watermark = e.wm
	return s
}

// emit queues a result.
func (c *core[V, A, R]) emit(key string, w Window, acc A, firing uint32) {
	c.out = append(c.out, Result[R]{Key: key, Window: w, Value: c.agg.Result(acc), Firing: firing})
	c.stats.Results++
	if firing > 0 {
		c.stats.Refires++
	}
}

// one is the accumulator of a single value.
func (c *core[V, A, R]) one(t int64, v V) A { return c.agg.Add(c.agg.Init(), t, v) }

func (c *core[V, A, R]) newSwag() swag[A] { return newSwag(c.agg.Init, c.agg.Merge, c.ret) }

// firings counts the firings of a key's windows that may still fire again
// (allowed lateness > 0), by window end.
type firings map[int64]uint32

func (f *firings) next(end int64) uint32 {
	if *f == nil {
		*f = firings{}
	}
	n := (*f)[end]
	(*f)[end] = n + 1
	return n
}

// again counts a firing of a window that has fired before, where only
// such firings are counted (lookback: a first firing needs no entry), and
// returns its number (1 for the second).
func (f *firings) again(end int64) uint32 {
	if *f == nil {
		*f = firings{}
	}
	n := (*f)[end] + 1
	(*f)[end] = n
	return n
}

// forget drops the counts of windows cleaned up at watermark w.
func (f firings) forget(w, lateness int64) {
	for end := range f {
		if end-1+lateness <= w {
			delete(f, end)
		}
	}
}
