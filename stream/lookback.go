package stream

import "sort"

// lookback gives, for every event, the aggregate over its key's events in
// the span before it, its own instant included: the window
// [t−span+1, t+1). A window fires once the watermark reaches t, so events
// that arrive out of order are counted where they belong; events at the same
// instant share one window, which fires once. Each key keeps its events in
// time order and a running aggregate of the current window (O(1) amortized
// per event), and forgets events once no window can reach them.
type lookback[V, A, R any] struct {
	c      *core[V, A, R]
	span   int64
	keys   map[string]*lookbackKey[V, A]
	timers timerQueue[*lookbackKey[V, A]]
}

type lbElem[V any] struct {
	t int64
	v V
}

type lookbackKey[V, A any] struct {
	key   string
	elems []lbElem[V] // by time, ties in arrival order
	// elems[:pending] have fired (their window, or a later one at the same
	// instant); elems[lo:hi] are in win, the window of lastFired.
	pending, lo, hi int
	lastFired       int64
	win             swag[A]
	dirty           bool // win must be rebuilt (a late event, or nothing fired yet)
	fires           firings

	timerAt  int64
	timerSeq uint64
	hasTimer bool
	gone     bool
}

func newLookback[V, A, R any](c *core[V, A, R]) *lookback[V, A, R] {
	return &lookback[V, A, R]{c: c, span: c.cfg.Size, keys: map[string]*lookbackKey[V, A]{}}
}

func (l *lookback[V, A, R]) numKeys() int { return len(l.keys) }

func (l *lookback[V, A, R]) event(key string, t int64, v V) bool {
	c := l.c
	lateness, w := c.cfg.Lateness, c.wm
	if t+lateness <= w {
		return true
	}
	k := l.keys[key]
	if k == nil {
		k = &lookbackKey[V, A]{key: key, win: c.newSwag(), dirty: true}
		l.keys[key] = k
	}
	n := len(k.elems)
	if n == 0 || k.elems[n-1].t <= t {
		k.elems = append(k.elems, lbElem[V]{t, v})
	} else {
		i := sort.Search(n, func(i int) bool { return k.elems[i].t > t })
		k.elems = append(k.elems, lbElem[V]{})
		copy(k.elems[i+1:], k.elems[i:])
		k.elems[i] = lbElem[V]{t, v}
		if i <= k.hi {
			k.dirty = true
		}
		if i <= k.lo {
			k.lo++
		}
		if i <= k.hi {
			k.hi++
		}
		if i <= k.pending && t <= w {
			k.pending++
		}
	}
	if t <= w {
		// Late but allowed: the window at t, and every later fired window
		// that reaches back over t and is not cleaned up, fire again now.
		if k.pending < len(k.elems) && k.elems[k.pending].t == t {
			k.pending++ // appended at the end, behind nothing pending
		}
		last := int64(-1 << 63)
		for i := sort.Search(k.pending, func(i int) bool { return k.elems[i].t >= t }); i < k.pending; i++ {
			e := k.elems[i].t
			if e == last {
				continue
			}
			last = e
			if e-l.span >= t {
				break
			}
			if e+lateness <= w {
				continue
			}
			var acc A
			if c.cfg.Mode == Discarding {
				acc = c.one(t, v)
			} else {
				acc = l.total(k, e)
			}
			c.emit(k.key, Window{e - l.span + 1, e + 1}, acc, k.fires.next(e+1))
		}
	}
	l.schedule(k)
	return false
}

// total aggregates k's events in the window ending at instant e.
func (l *lookback[V, A, R]) total(k *lookbackKey[V, A], e int64) A {
	agg := l.c.agg
	acc := agg.Init()
	i := sort.Search(len(k.elems), func(i int) bool { return k.elems[i].t > e-l.span })
	for ; i < len(k.elems) && k.elems[i].t <= e; i++ {
		acc = agg.Add(acc, k.elems[i].t, k.elems[i].v)
	}
	return acc
}

func (l *lookback[V, A, R]) schedule(k *lookbackKey[V, A]) {
	var at int64
	if k.pending < len(k.elems) {
		at = k.elems[k.pending].t
	} else {
		at = k.elems[len(k.elems)-1].t + l.span + l.c.cfg.Lateness - 1
	}
	if k.hasTimer && k.timerAt == at {
		return
	}
	k.timerAt, k.hasTimer = at, true
	k.timerSeq = l.timers.push(at, k)
}

func (l *lookback[V, A, R]) advance(w int64) {
	for {
		t, ok := l.timers.peek()
		if !ok || t.at > w {
			return
		}
		tm := l.timers.pop()
		k := tm.k
		if k.gone || !k.hasTimer || k.timerSeq != tm.seq {
			continue
		}
		k.hasTimer = false
		if l.step(k, tm.at) {
			l.schedule(k)
		}
	}
}

// step fires k's window at instant now, if one is pending there, and
// forgets what no window can reach any more. It reports whether k has state
// left.
func (l *lookback[V, A, R]) step(k *lookbackKey[V, A], now int64) bool {
	c := l.c
	if k.pending < len(k.elems) && k.elems[k.pending].t <= now {
		t0 := k.elems[k.pending].t
		j := k.pending + 1
		for j < len(k.elems) && k.elems[j].t == t0 {
			j++
		}
		if k.dirty {
			k.win.reset()
			k.lo = sort.Search(len(k.elems), func(i int) bool { return k.elems[i].t > t0-l.span })
			k.hi, k.dirty = k.lo, false
		}
		for ; k.hi < j; k.hi++ {
			k.win.push(c.one(k.elems[k.hi].t, k.elems[k.hi].v))
		}
		for k.lo < k.hi && k.elems[k.lo].t <= t0-l.span {
			k.win.pop()
			k.lo++
		}
		k.pending, k.lastFired = j, t0
		var firing uint32
		if c.cfg.Lateness > 0 {
			firing = k.fires.next(t0 + 1)
		}
		c.emit(k.key, Window{t0 - l.span + 1, t0 + 1}, k.win.query(), firing)
	}
	// Forget events before the window that no window still to fire, or
	// to fire again, reaches.
	limit := now - c.cfg.Lateness + 1 - l.span
	n := 0
	for n < k.lo && k.elems[n].t <= limit {
		n++
	}
	if n > 0 {
		var zero lbElem[V]
		for i := range n {
			k.elems[i] = zero
		}
		k.elems = k.elems[n:]
		k.lo -= n
		k.hi -= n
		k.pending -= n
	}
	if k.fires != nil {
		k.fires.forget(now, c.cfg.Lateness)
	}
	if k.pending == len(k.elems) && (len(k.elems) == 0 || k.elems[len(k.elems)-1].t <= limit) {
		k.gone = true
		delete(l.keys, k.key)
		return false
	}
	return true
}
