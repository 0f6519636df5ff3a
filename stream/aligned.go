package stream

import "sort"

// aligned runs tumbling and sliding windows. Each key's events are kept in
// panes gcd(size, slide) long (one pane per event, whatever size/slide is),
// and the key's windows fire in order of end from a running aggregate of the
// panes inside the current window: a window's result costs O(1) panes
// pushed and popped, not size/slide merges.
type aligned[V, A, R any] struct {
	c                          *core[V, A, R]
	size, slide, offset, paneN int64
	endOffset                  int64 // window ends are ≡ endOffset (mod slide)
	keys                       map[string]*alignedKey[A]
	timers                     timerQueue[*alignedKey[A]]
}

type pane[A any] struct {
	start int64
	acc   A
}

type alignedKey[A any] struct {
	key   string
	panes []pane[A] // by start; only panes with content
	// fired: every window ending at or before it has had its on-time
	// firing (or had nothing in it when the watermark passed its end).
	fired int64
	// win aggregates the panes of [fired−size, fired), whose starts are
	// winStarts; dirty means a late event changed one of them.
	win       swag[A]
	winStarts deque[int64]
	dirty     bool
	fires     firings // lateness > 0: firings so far of windows that may fire again

	timer keyTimer
	gone  bool
}

func newAligned[V, A, R any](c *core[V, A, R]) *aligned[V, A, R] {
	slide := c.cfg.Slide
	if c.cfg.Kind == Tumbling {
		slide = c.cfg.Size
	}
	a := &aligned[V, A, R]{
		c: c, size: c.cfg.Size, slide: slide, offset: c.cfg.Offset,
		paneN: gcd(c.cfg.Size, slide),
		keys:  map[string]*alignedKey[A]{},
	}
	a.endOffset = floorMod(a.offset+a.size, slide)
	return a
}

func (a *aligned[V, A, R]) numKeys() int { return len(a.keys) }

// lastEnd is the end of the last window holding time t.
func (a *aligned[V, A, R]) lastEnd(t int64) int64 { return alignDown(t, a.offset, a.slide) + a.size }

// firstEnd is the end of the first window holding time t.
func (a *aligned[V, A, R]) firstEnd(t int64) int64 {
	return alignDown(t-a.size, a.offset, a.slide) + a.slide + a.size
}

func (a *aligned[V, A, R]) event(key string, t int64, v V) bool {
	c := a.c
	lateness, w := c.cfg.Lateness, c.wm
	if a.lastEnd(t)-1+lateness <= w {
		return true // every window holding t is cleaned up
	}
	k := a.keys[key]
	if k == nil {
		k = &alignedKey[A]{key: key, win: c.newSwag(),
			fired: alignDown(w+1, a.endOffset, a.slide)}
		a.keys[key] = k
	}
	// Windows ending by w+1 have all fired (those with content did, on
	// time); moving fired up to them keeps a late event's window, fired
	// below, from firing on time as well.
	if f := alignDown(w+1, a.endOffset, a.slide); f > k.fired {
		k.fired, k.dirty = f, true
	}
	p := alignDown(t, a.offset, a.paneN)
	i := len(k.panes)
	if i == 0 || k.panes[i-1].start < p {
		k.panes = append(k.panes, pane[A]{start: p, acc: c.agg.Add(c.agg.Init(), t, v)})
	} else {
		i = sort.Search(len(k.panes), func(i int) bool { return k.panes[i].start >= p })
		if i < len(k.panes) && k.panes[i].start == p {
			k.panes[i].acc = c.agg.Add(k.panes[i].acc, t, v)
		} else {
			k.panes = append(k.panes, pane[A]{})
			copy(k.panes[i+1:], k.panes[i:])
			k.panes[i] = pane[A]{start: p, acc: c.agg.Add(c.agg.Init(), t, v)}
		}
	}
	if p < k.fired && p >= k.fired-a.size {
		k.dirty = true
	}
	if t <= w {
		// Late but allowed: each window holding t that has fired and is
		// not cleaned up fires again now, latest start first as Flink
		// assigns them.
		for s := alignDown(t, a.offset, a.slide); s > t-a.size; s -= a.slide {
			end := s + a.size
			if end-1 > w || end-1+lateness <= w {
				continue
			}
			var acc A
			if c.cfg.Mode == Discarding {
				acc = c.one(t, v)
			} else {
				acc = a.paneTotal(k, s, end)
			}
			c.emit(key, Window{s, end}, acc, k.fires.next(end))
		}
	}
	a.schedule(k)
	return false
}

// paneTotal merges k's panes in [from, to).
func (a *aligned[V, A, R]) paneTotal(k *alignedKey[A], from, to int64) A {
	acc := a.c.agg.Init()
	i := sort.Search(len(k.panes), func(i int) bool { return k.panes[i].start >= from })
	for ; i < len(k.panes) && k.panes[i].start < to; i++ {
		acc = a.c.agg.Merge(acc, k.panes[i].acc)
	}
	return acc
}

// nextFire is the end of k's next window with content that has not fired
// on time, if any.
func (a *aligned[V, A, R]) nextFire(k *alignedKey[A]) (int64, bool) {
	i := sort.Search(len(k.panes), func(i int) bool { return a.lastEnd(k.panes[i].start) > k.fired })
	if i == len(k.panes) {
		return 0, false
	}
	return max(k.fired+a.slide, a.firstEnd(k.panes[i].start)), true
}

// schedule sets k's timer to its next firing or cleanup, or drops k when
// nothing is left.
func (a *aligned[V, A, R]) schedule(k *alignedKey[A]) {
	if len(k.panes) == 0 {
		k.gone, k.timer.armed = true, false
		delete(a.keys, k.key)
		return
	}
	at, lane := a.lastEnd(k.panes[0].start)-1+a.c.cfg.Lateness, cleanupLane // first cleanup
	if end, ok := a.nextFire(k); ok && end-1 < at {
		at, lane = end-1, fireLane
	}
	arm(&k.timer, &a.timers, lane, at, k)
}

func (a *aligned[V, A, R]) advance(w int64) {
	a.timers.due(w, func(tm timer[*alignedKey[A]]) {
		k := tm.k
		if k.gone || !k.timer.take(tm.seq) {
			return // moved or dropped since
		}
		a.step(k, tm.at)
		a.schedule(k)
	})
}

// step does what is due for k at time now: its on-time firing, then
// cleanup. Timers run in order of time across keys, so every firing happens
// as if the watermark had stopped at now.
func (a *aligned[V, A, R]) step(k *alignedKey[A], now int64) {
	c := a.c
	if end, ok := a.nextFire(k); ok && end-1 <= now {
		a.fire(k, end)
	}
	lateness := c.cfg.Lateness
	n := 0
	for n < len(k.panes) && a.lastEnd(k.panes[n].start)-1+lateness <= now {
		n++
	}
	if n > 0 {
		var zero pane[A]
		for i := range n {
			k.panes[i] = zero
		}
		k.panes = k.panes[n:]
	}
	if k.fires != nil {
		k.fires.forget(now, lateness)
	}
}

// fire emits k's window ending at end, moving the running aggregate to it.
func (a *aligned[V, A, R]) fire(k *alignedKey[A], end int64) {
	start := end - a.size
	from := k.fired
	if k.dirty || start >= k.fired {
		k.win.reset()
		k.winStarts.reset()
		k.dirty = false
		from = start
	} else {
		for k.winStarts.len() > 0 && *k.winStarts.front() < start {
			k.win.pop()
			k.winStarts.pop()
		}
	}
	i := sort.Search(len(k.panes), func(i int) bool { return k.panes[i].start >= from })
	for ; i < len(k.panes) && k.panes[i].start < end; i++ {
		k.win.push(k.panes[i].acc)
		k.winStarts.push(k.panes[i].start)
	}
	k.fired = end
	var firing uint32
	if a.c.cfg.Lateness > 0 {
		firing = k.fires.next(end)
	}
	a.c.emit(k.key, Window{start, end}, k.win.query(), firing)
}
