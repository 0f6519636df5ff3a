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
	elems []lbElem[V] // by time, ties in arrival order; elems[:dead] are forgotten
	// elems[:pending] have fired (their window, or a later one at the same
	// instant); elems[lo:hi] are in the window of lastFired, whose
	// aggregate is total (a Retracting aggregator) or win (the others).
	dead, pending, lo, hi int
	lastFired             int64
	total                 A
	win                   swag[A]
	dirty                 bool // the window must be rebuilt (a late event, or nothing fired yet)
	fires                 firings

	// Two timers: the next firing, and a cleanup check. The cleanup time
	// only moves later, so a pending check is kept rather than moved (on
	// firing early it forgets what it can and re-arms): one push per span
	// per key instead of one per event.
	fire, clean keyTimer
	gone        bool
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
		k = l.newKey(key)
		l.keys[key] = k
	}
	n := len(k.elems)
	if n == k.dead || k.elems[n-1].t <= t {
		k.elems = append(k.elems, lbElem[V]{t, v})
	} else {
		i := k.dead + sort.Search(n-k.dead, func(i int) bool { return k.elems[k.dead+i].t > t })
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
		for i := k.dead + sort.Search(k.pending-k.dead, func(i int) bool { return k.elems[k.dead+i].t >= t }); i < k.pending; i++ {
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

func (l *lookback[V, A, R]) newKey(key string) *lookbackKey[V, A] {
	k := &lookbackKey[V, A]{key: key, dirty: true}
	if l.c.ret == nil {
		k.win = l.c.newSwag()
	}
	return k
}

// total aggregates k's events in the window ending at instant e.
func (l *lookback[V, A, R]) total(k *lookbackKey[V, A], e int64) A {
	agg := l.c.agg
	acc := agg.Init()
	i := k.dead + sort.Search(len(k.elems)-k.dead, func(i int) bool { return k.elems[k.dead+i].t > e-l.span })
	for ; i < len(k.elems) && k.elems[i].t <= e; i++ {
		acc = agg.Add(acc, k.elems[i].t, k.elems[i].v)
	}
	return acc
}

func (l *lookback[V, A, R]) schedule(k *lookbackKey[V, A]) {
	if k.pending < len(k.elems) {
		arm(&k.fire, &l.timers, fireLane, k.elems[k.pending].t, k)
	} else {
		k.fire.armed = false
	}
	if !k.clean.armed {
		arm(&k.clean, &l.timers, cleanupLane, k.elems[len(k.elems)-1].t+l.span+l.c.cfg.Lateness-1, k)
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

// step fires k's window at instant now (fire: only from the fire timer, so
// that firing order follows the fire timers alone), and forgets what no
// window can reach any more. It reports whether k has state left.
func (l *lookback[V, A, R]) step(k *lookbackKey[V, A], now int64, fire bool) bool {
	c := l.c
	if fire && k.pending < len(k.elems) && k.elems[k.pending].t <= now {
		t0 := k.elems[k.pending].t
		j := k.pending + 1
		for j < len(k.elems) && k.elems[j].t == t0 {
			j++
		}
		agg := c.agg
		if k.dirty {
			k.total = agg.Init()
			if c.ret == nil {
				k.win.reset()
			}
			k.lo = k.dead + sort.Search(len(k.elems)-k.dead, func(i int) bool { return k.elems[k.dead+i].t > t0-l.span })
			k.hi, k.dirty = k.lo, false
		}
		for ; k.hi < j; k.hi++ {
			e := &k.elems[k.hi]
			if c.ret != nil {
				k.total = agg.Add(k.total, e.t, e.v)
			} else {
				k.win.push(c.one(e.t, e.v))
			}
		}
		for k.lo < k.hi && k.elems[k.lo].t <= t0-l.span {
			if c.ret != nil {
				e := &k.elems[k.lo]
				k.total = c.ret(k.total, c.one(e.t, e.v))
			} else {
				k.win.pop()
			}
			k.lo++
		}
		k.pending, k.lastFired = j, t0
		var firing uint32
		if c.cfg.Lateness > 0 {
			firing = k.fires.next(t0 + 1)
		}
		acc := k.total
		if c.ret == nil {
			acc = k.win.query()
		}
		c.emit(k.key, Window{t0 - l.span + 1, t0 + 1}, acc, firing)
	}
	// Forget events before the window that no window still to fire, or
	// to fire again, reaches; compact once half the slice is forgotten.
	limit := now - c.cfg.Lateness + 1 - l.span
	for k.dead < k.lo && k.elems[k.dead].t <= limit {
		var zero lbElem[V]
		k.elems[k.dead] = zero
		k.dead++
	}
	if n := k.dead; n > 16 && n > len(k.elems)/2 {
		m := copy(k.elems, k.elems[n:])
		clear(k.elems[m:])
		k.elems = k.elems[:m]
		k.dead = 0
		k.lo -= n
		k.hi -= n
		k.pending -= n
	}
	if k.fires != nil {
		k.fires.forget(now, c.cfg.Lateness)
	}
	if k.pending == len(k.elems) && (len(k.elems) == k.dead || k.elems[len(k.elems)-1].t <= limit) {
		k.gone = true
		delete(l.keys, k.key)
		return false
	}
	return true
}
