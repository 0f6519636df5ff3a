package stream

import "sort"

// lookback gives, for every event, the aggregate over its key's events in
// the span before it, its own instant included: the window
// [t−span+1, t+1), one per span (Config.Size, then Config.Spans). A window
// fires once the watermark reaches t, so events that arrive out of order are
// counted where they belong; events at the same instant share one window per
// span, which fires once. Each key keeps its events once, in time order, and
// a running aggregate per span (O(1) amortized per event), and forgets
// events once no window can reach them.
type lookback[V, A, R any] struct {
	c       *core[V, A, R]
	spans   []int64
	maxSpan int64
	keys    map[string]*lookbackKey[V, A]
	timers  timerQueue[*lookbackKey[V, A]]
	// probed is the key the last Probe found: an authorization probes a
	// key, decides, then adds the event, and the second lookup of a key
	// among millions is a cache miss of its own.
	probed *lookbackKey[V, A]
}

type lbElem[V any] struct {
	t int64
	v V
}

// lbSpan is a key's running window of one span: the events at positions
// [lo, hi) of its key are in the window of the last instant fired, whose aggregate is total (a
// Retracting aggregator) or win (the others).
type lbSpan[A any] struct {
	lo    int
	total A
	win   *swag[A] // only for aggregators that cannot retract
	fires firings  // lookback counts only firings again (late events)
}

type lookbackKey[V, A any] struct {
	key string
	// The live events, by time, ties in arrival order, at their positions:
	// those before pending have fired (their windows, or later ones at the
	// same instant), those before hi have been added to every span's
	// window. An out-of-order event takes the position of the events from
	// it on, which move one later.
	elems       deque[lbElem[V]]
	pending, hi int
	// last is the newest event's time (when there are events): kept here
	// so that an event in order is appended without first fetching the
	// newest one, a cache miss of its own.
	last   int64
	spans  []lbSpan[A] // inline's storage when there are at most two
	dirty  bool        // the windows must be rebuilt (a late event, or nothing fired yet)
	inline [2]lbSpan[A]

	// Two timers: the next firing, and a cleanup check. The cleanup time
	// only moves later, so a pending check is kept rather than moved (on
	// firing early it forgets what it can and re-arms): one push per span
	// per key instead of one per event.
	fire, clean keyTimer
	gone        bool
}

func newLookback[V, A, R any](c *core[V, A, R]) *lookback[V, A, R] {
	l := &lookback[V, A, R]{c: c, spans: c.cfg.spans(), keys: map[string]*lookbackKey[V, A]{}}
	l.maxSpan = l.spans[0]
	for _, sp := range l.spans {
		l.maxSpan = max(l.maxSpan, sp)
	}
	return l
}

func (l *lookback[V, A, R]) numKeys() int { return len(l.keys) }

func (l *lookback[V, A, R]) newKey(key string) *lookbackKey[V, A] {
	k := &lookbackKey[V, A]{key: key, dirty: true}
	// The spans live in the key itself when they fit: one cache line
	// fewer to fetch per event.
	if len(l.spans) <= len(k.inline) {
		k.spans = k.inline[:len(l.spans)]
	} else {
		k.spans = make([]lbSpan[A], len(l.spans))
	}
	if l.c.ret == nil {
		for i := range k.spans {
			w := l.c.newSwag()
			k.spans[i].win = &w
		}
	}
	return k
}

func (l *lookback[V, A, R]) event(key string, t int64, v V) bool {
	c := l.c
	lateness, w := c.cfg.Lateness, c.wm
	if t+lateness <= w {
		return true
	}
	k := l.probed
	if k == nil || k.key != key {
		k = l.keys[key]
	}
	if k == nil {
		k = l.newKey(key)
		l.keys[key] = k
	}
	// Whether t's windows have fired before: a late event at an instant
	// with events makes them fire again; at a new one, for the first time.
	refire := false
	if t <= w {
		i := l.first(k, t-1)
		refire = i < k.elems.tail && k.elems.at(i).t == t
	}
	if k.elems.empty() || k.last <= t {
		k.elems.push(lbElem[V]{t, v})
		k.last = t
	} else {
		i := l.first(k, t)
		k.elems.insert(i, lbElem[V]{t, v})
		if i <= k.hi {
			k.dirty = true
			k.hi++
		}
		for s := range k.spans {
			if i <= k.spans[s].lo {
				k.spans[s].lo++
			}
		}
		if i <= k.pending && t <= w {
			k.pending++
		}
	}
	if t <= w {
		// Late but allowed: the windows at t, and every later fired window
		// that reaches back over t and is not cleaned up, fire again now,
		// by instant, then span.
		if k.pending < k.elems.tail && k.elems.at(k.pending).t == t {
			k.pending++ // appended at the end, behind nothing pending
		}
		last := int64(-1 << 63)
		for i := l.first(k, t-1); i < k.pending; i++ {
			e := k.elems.at(i).t
			if e == last {
				continue
			}
			last = e
			if e-l.maxSpan >= t {
				break
			}
			if e+lateness <= w {
				continue
			}
			for s, span := range l.spans {
				if e-span >= t {
					continue
				}
				var acc A
				if c.cfg.Mode == Discarding {
					acc = c.one(t, v)
				} else {
					acc = l.total(k, e, span)
				}
				var firing uint32
				if e != t || refire {
					firing = k.spans[s].fires.again(e + 1)
				}
				c.emit(k.key, Window{e - span + 1, e + 1}, acc, firing)
			}
		}
	}
	l.schedule(k)
	return false
}

// total aggregates k's events in the window of span ending at instant e.
func (l *lookback[V, A, R]) total(k *lookbackKey[V, A], e, span int64) A {
	agg := l.c.agg
	acc := agg.Init()
	for i := l.first(k, e-span); i < k.elems.tail && k.elems.at(i).t <= e; i++ {
		x := k.elems.at(i)
		acc = agg.Add(acc, x.t, x.v)
	}
	return acc
}

// window aggregates k's events in the window of span s at instant t,
// leaving the key as it is. When t is not before the key's newest event,
// that is the running window (a copy) less the events t's window has left
// behind, plus the events not yet added to it (those not yet fired): for
// aggregators that cannot retract, only when none has been left behind.
// Otherwise the events are folded anew.
func (l *lookback[V, A, R]) window(k *lookbackKey[V, A], s int, t int64) A {
	c := l.c
	ks, span := &k.spans[s], l.spans[s]
	if !k.dirty && t >= k.last {
		var acc A
		switch {
		case c.ret != nil:
			acc = c.agg.Merge(c.agg.Init(), ks.total)
			for i := ks.lo; i < k.hi && k.elems.at(i).t <= t-span; i++ {
				e := k.elems.at(i)
				acc = c.ret(acc, c.one(e.t, e.v))
			}
		case ks.lo == k.hi || k.elems.at(ks.lo).t > t-span:
			acc = c.agg.Merge(c.agg.Init(), ks.win.query())
		default:
			return l.total(k, t, span)
		}
		for i := k.hi; i < k.elems.tail; i++ {
			if e := k.elems.at(i); e.t > t-span {
				acc = c.agg.Add(acc, e.t, e.v)
			}
		}
		return acc
	}
	return l.total(k, t, span)
}

// first is the position of k's first live event after time t.
func (l *lookback[V, A, R]) first(k *lookbackKey[V, A], t int64) int {
	d := &k.elems
	return d.head + sort.Search(d.len(), func(i int) bool { return d.at(d.head+i).t > t })
}

func (l *lookback[V, A, R]) schedule(k *lookbackKey[V, A]) {
	if k.pending < k.elems.tail {
		arm(&k.fire, &l.timers, fireLane, k.elems.at(k.pending).t, k)
	} else {
		k.fire.armed = false
	}
	if !k.clean.armed {
		arm(&k.clean, &l.timers, cleanupLane, k.last+l.maxSpan+l.c.cfg.Lateness-1, k)
	}
}

func (l *lookback[V, A, R]) advance(w int64) {
	l.timers.due(w, func(tm timer[*lookbackKey[V, A]]) {
		k := tm.k
		if k.gone {
			return
		}
		fire := k.fire.take(tm.seq)
		if !fire && !k.clean.take(tm.seq) {
			return // moved since
		}
		if l.step(k, tm.at, fire) {
			l.schedule(k)
		}
	})
}

// step fires k's windows at instant now (fire: only from the fire timer, so
// that firing order follows the fire timers alone), and forgets what no
// window can reach any more. It reports whether k has state left.
func (l *lookback[V, A, R]) step(k *lookbackKey[V, A], now int64, fire bool) bool {
	c := l.c
	d := &k.elems
	if fire && k.pending < d.tail && d.at(k.pending).t <= now {
		t0 := d.at(k.pending).t
		j := k.pending + 1
		for j < d.tail && d.at(j).t == t0 {
			j++
		}
		l.fire(k, t0, j)
	}
	// Forget events before every window that no window still to fire, or
	// to fire again, reaches.
	limit := now - c.cfg.Lateness + 1 - l.maxSpan
	lo := k.hi
	for s := range k.spans {
		lo = min(lo, k.spans[s].lo)
	}
	for d.head < lo && d.front().t <= limit {
		d.pop()
	}
	if c.cfg.Lateness > 0 {
		for s := range k.spans {
			k.spans[s].fires.forget(now, c.cfg.Lateness)
		}
	}
	if k.pending == d.tail && (d.empty() || k.last <= limit) {
		k.gone = true
		delete(l.keys, k.key)
		if l.probed == k {
			l.probed = nil
		}
		return false
	}
	return true
}

// fire moves every span's window to instant t0 (events up to j) and emits
// them, in span order.
func (l *lookback[V, A, R]) fire(k *lookbackKey[V, A], t0 int64, j int) {
	c := l.c
	agg := c.agg
	if k.dirty {
		for s, span := range l.spans {
			ks := &k.spans[s]
			ks.total = agg.Init()
			if c.ret == nil {
				ks.win.reset()
			}
			ks.lo = l.first(k, t0-span)
			for i := ks.lo; i < j; i++ {
				l.push(ks, k.elems.at(i))
			}
		}
		k.hi, k.dirty = j, false
	} else {
		for i := k.hi; i < j; i++ {
			for s := range k.spans {
				l.push(&k.spans[s], k.elems.at(i))
			}
		}
		k.hi = j
	}
	k.pending = j
	for s, span := range l.spans {
		ks := &k.spans[s]
		for ks.lo < k.hi && k.elems.at(ks.lo).t <= t0-span {
			if c.ret != nil {
				e := k.elems.at(ks.lo)
				ks.total = c.ret(ks.total, c.one(e.t, e.v))
			} else {
				ks.win.pop()
			}
			ks.lo++
		}
		// A window fires here for the first time (Firing 0); its firings
		// again are counted where late events cause them.
		acc := ks.total
		if c.ret == nil {
			acc = ks.win.query()
		}
		c.emit(k.key, Window{t0 - span + 1, t0 + 1}, acc, 0)
	}
}

func (l *lookback[V, A, R]) push(ks *lbSpan[A], e *lbElem[V]) {
	if l.c.ret != nil {
		ks.total = l.c.agg.Add(ks.total, e.t, e.v)
	} else {
		ks.win.push(l.c.one(e.t, e.v))
	}
}
