package stream

import "sort"

// sessions runs session windows: an event opens [t, t+gap), and windows
// that overlap or touch merge (Flink's TimeWindow.intersects), so an event
// that bridges two sessions joins them into one.
type sessions[V, A, R any] struct {
	c      *core[V, A, R]
	keys   map[string]*sessionKey[A]
	timers timerQueue[*sessionKey[A]]
}

type session[A any] struct {
	w      Window
	acc    A
	has    bool   // holds content (since its last firing, in discarding mode)
	due    bool   // its on-time firing is still to come
	firing uint32 // firings so far
}

type sessionKey[A any] struct {
	key string
	s   []session[A] // by start, disjoint and not touching

	timer keyTimer
	gone  bool
}

func newSessions[V, A, R any](c *core[V, A, R]) *sessions[V, A, R] {
	return &sessions[V, A, R]{c: c, keys: map[string]*sessionKey[A]{}}
}

func (s *sessions[V, A, R]) numKeys() int { return len(s.keys) }

func (s *sessions[V, A, R]) event(key string, t int64, v V) bool {
	c := s.c
	lateness, w := c.cfg.Lateness, c.wm
	nw := Window{t, t + c.cfg.Gap}
	k := s.keys[key]
	var i, j int // k.s[i:j] intersect nw
	if k != nil {
		i = sort.Search(len(k.s), func(i int) bool { return k.s[i].w.End >= nw.Start })
		j = i
		for j < len(k.s) && k.s[j].w.Start <= nw.End {
			j++
		}
	}
	if i == j {
		if nw.End-1+lateness <= w {
			return true // a session of its own, already cleaned up
		}
		if k == nil {
			k = &sessionKey[A]{key: key}
			s.keys[key] = k
		}
		k.s = append(k.s, session[A]{})
		copy(k.s[i+1:], k.s[i:])
		k.s[i] = session[A]{w: nw, acc: c.agg.Init(), due: nw.End-1 > w}
		j = i + 1
	} else {
		// Merge k.s[i:j] and nw. A merged window ends no earlier than an
		// existing live one, so it is never late.
		m := k.s[i]
		cover := Window{min(m.w.Start, nw.Start), max(k.s[j-1].w.End, nw.End)}
		for _, o := range k.s[i+1 : j] {
			m.acc = c.agg.Merge(m.acc, o.acc)
			m.has = m.has || o.has
		}
		if cover != m.w || j-i > 1 {
			// A new window: its timer is Flink's onMerge one.
			m.w, m.firing, m.due = cover, 0, cover.End-1 > w
		}
		k.s[i] = m
		k.s = append(k.s[:i+1], k.s[j:]...)
	}
	m := &k.s[i]
	m.acc = c.agg.Add(m.acc, t, v)
	m.has = true
	if m.w.End-1 <= w {
		s.fireSession(k, m) // Flink's EventTimeTrigger.onElement: FIRE
	}
	s.schedule(k)
	return false
}

func (s *sessions[V, A, R]) fireSession(k *sessionKey[A], m *session[A]) {
	c := s.c
	if m.has {
		c.emit(k.key, m.w, m.acc, m.firing)
		m.firing++
	}
	if c.cfg.Mode == Discarding {
		m.acc, m.has = c.agg.Init(), false
	}
}

func (s *sessions[V, A, R]) schedule(k *sessionKey[A]) {
	if len(k.s) == 0 {
		k.gone, k.timer.armed = true, false
		delete(s.keys, k.key)
		return
	}
	at, lane := int64(maxWatermark), cleanupLane
	for i := range k.s {
		m := &k.s[i]
		if m.due && m.w.End-1 < at {
			at, lane = m.w.End-1, fireLane
		} else if !m.due && m.w.End-1+s.c.cfg.Lateness < at {
			at, lane = m.w.End-1+s.c.cfg.Lateness, cleanupLane
		}
	}
	arm(&k.timer, &s.timers, lane, at, k)
}

func (s *sessions[V, A, R]) advance(w int64) {
	s.timers.due(w, func(tm timer[*sessionKey[A]]) {
		k := tm.k
		if k.gone || !k.timer.take(tm.seq) {
			return // moved or dropped since
		}
		now := tm.at
		n := 0
		for i := range k.s {
			m := &k.s[i]
			if m.due && m.w.End-1 <= now {
				m.due = false
				s.fireSession(k, m)
			}
			if !m.due && m.w.End-1+s.c.cfg.Lateness <= now {
				continue // cleaned up
			}
			k.s[n] = *m
			n++
		}
		clear(k.s[n:])
		k.s = k.s[:n]
		s.schedule(k)
	})
}
