package stream

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The engine is checked against deliberately simple references on random
// inputs (the approach of raft's quorum/quick_test.go): a copy-per-window
// implementation of tumbling and sliding windows, and a lookback that
// rescans every event of its key. Both follow the semantics as written in
// doc.go, window by window, with no panes, running aggregates or eviction.

type nElem struct{ t, v int64 }

type nWindow struct {
	elems   []nElem
	since   int // elems[since:] arrived after the last firing
	pending bool
	firings uint32
}

type out struct {
	key        string
	start, end int64
	value      int64
	firing     uint32
	late       bool
}

func (o out) String() string {
	if o.late {
		return fmt.Sprintf("late %s %d %d", o.key, o.start, o.value)
	}
	return fmt.Sprintf("%s [%d,%d) %d #%d", o.key, o.start, o.end, o.value, o.firing)
}

type naiveAgg struct {
	max bool // max instead of sum
}

func (a naiveAgg) of(es []nElem) int64 {
	var r int64
	for i, e := range es {
		if i == 0 || !a.max {
			if a.max {
				r = e.v
			} else {
				r += e.v
			}
		} else {
			r = max(r, e.v)
		}
	}
	return r
}

// naiveAligned keeps every window of every key as its own list of events.
type naiveAligned struct {
	cfg  Config
	agg  naiveAgg
	wm   int64
	wins map[string]map[int64]*nWindow // key → start → window
}

func (n *naiveAligned) slide() int64 {
	if n.cfg.Kind == Tumbling {
		return n.cfg.Size
	}
	return n.cfg.Slide
}

func (n *naiveAligned) fire(key string, start int64, w *nWindow) (out, bool) {
	es := w.elems
	if n.cfg.Mode == Discarding {
		es = es[w.since:]
	}
	w.since = len(w.elems)
	if len(es) == 0 {
		return out{}, false
	}
	o := out{key: key, start: start, end: start + n.cfg.Size, value: n.agg.of(es), firing: w.firings}
	w.firings++
	return o, true
}

func (n *naiveAligned) event(key string, t, v int64) []out {
	var res []out
	skipped := true
	for s := alignDown(t, n.cfg.Offset, n.slide()); s > t-n.cfg.Size; s -= n.slide() {
		end := s + n.cfg.Size
		if end-1+n.cfg.Lateness <= n.wm {
			continue
		}
		skipped = false
		if n.wins[key] == nil {
			n.wins[key] = map[int64]*nWindow{}
		}
		w := n.wins[key][s]
		if w == nil {
			w = &nWindow{pending: end-1 > n.wm}
			n.wins[key][s] = w
		}
		w.elems = append(w.elems, nElem{t, v})
		if end-1 <= n.wm {
			if o, ok := n.fire(key, s, w); ok {
				res = append(res, o)
			}
		}
	}
	if skipped {
		res = append(res, out{key: key, start: t, value: v, late: true})
	}
	return res
}

func (n *naiveAligned) watermark(wm int64) []out {
	if wm <= n.wm {
		return nil
	}
	n.wm = wm
	var res []out
	for key, ws := range n.wins {
		for s, w := range ws {
			end := s + n.cfg.Size
			if w.pending && end-1 <= wm {
				w.pending = false
				if o, ok := n.fire(key, s, w); ok {
					res = append(res, o)
				}
			}
			if end-1+n.cfg.Lateness <= wm {
				delete(ws, s)
			}
		}
	}
	return res
}

// naiveLookback keeps every event and rescans them for each window.
type naiveLookback struct {
	cfg    Config
	agg    naiveAgg
	wm     int64
	events map[string][]nElem
	wins   map[string]map[int64]*nWindow // key → instant → window (elems unused)
}

func (n *naiveLookback) value(key string, e int64) int64 {
	var es []nElem
	for _, x := range n.events[key] {
		if x.t > e-n.cfg.Size && x.t <= e {
			es = append(es, x)
		}
	}
	slices.SortStableFunc(es, func(a, b nElem) int { return cmp.Compare(a.t, b.t) })
	return n.agg.of(es)
}

// probe is what the window at instant t would hold with (t, v) in it.
func (n *naiveLookback) probe(key string, t, v int64) out {
	val := n.value(key, t)
	if n.agg.max && slices.ContainsFunc(n.events[key], func(x nElem) bool { return x.t > t-n.cfg.Size && x.t <= t }) {
		val = max(val, v)
	} else if n.agg.max {
		val = v
	} else {
		val += v
	}
	return out{key: key, start: t - n.cfg.Size + 1, end: t + 1, value: val}
}

func (n *naiveLookback) win(key string, e int64) *nWindow {
	if n.wins[key] == nil {
		n.wins[key] = map[int64]*nWindow{}
	}
	w := n.wins[key][e]
	if w == nil {
		w = &nWindow{}
		n.wins[key][e] = w
	}
	return w
}

func (n *naiveLookback) event(key string, t, v int64) []out {
	if t+n.cfg.Lateness <= n.wm {
		return []out{{key: key, start: t, value: v, late: true}}
	}
	n.events[key] = append(n.events[key], nElem{t, v})
	if t > n.wm {
		n.win(key, t).pending = true
		return nil
	}
	var res []out
	instants := map[int64]bool{}
	for _, x := range n.events[key] {
		if x.t >= t && x.t-n.cfg.Size < t && x.t <= n.wm && x.t+n.cfg.Lateness > n.wm {
			instants[x.t] = true
		}
	}
	for _, e := range slices.Sorted(mapKeys(instants)) {
		w := n.win(key, e)
		val := n.value(key, e)
		if n.cfg.Mode == Discarding {
			val = n.agg.of([]nElem{{t, v}})
		}
		res = append(res, out{key: key, start: e - n.cfg.Size + 1, end: e + 1, value: val, firing: w.firings})
		w.firings++
	}
	return res
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (n *naiveLookback) watermark(wm int64) []out {
	if wm <= n.wm {
		return nil
	}
	n.wm = wm
	var res []out
	for key, ws := range n.wins {
		for e, w := range ws {
			if w.pending && e <= wm {
				w.pending = false
				res = append(res, out{key: key, start: e - n.cfg.Size + 1, end: e + 1, value: n.value(key, e), firing: w.firings})
				w.firings++
			}
		}
	}
	return res
}

type reference interface {
	event(key string, t, v int64) []out
	watermark(w int64) []out
}

// collect turns an engine's results (and a late report) into outs.
func collect[A any](e *Engine[int64, A, int64], late bool, key string, t, v int64) []out {
	var res []out
	for _, r := range e.Ready() {
		res = append(res, out{key: r.Key, start: r.Window.Start, end: r.Window.End, value: r.Value, firing: r.Firing})
	}
	e.Advance()
	if late {
		res = append(res, out{key: key, start: t, value: v, late: true})
	}
	return res
}

func sortOuts(o []out) []out {
	o = slices.Clone(o)
	slices.SortFunc(o, func(a, b out) int {
		return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.key, b.key), cmp.Compare(a.start, b.start), cmp.Compare(a.firing, b.firing))
	})
	return o
}

// drive feeds the same random input to the engine and the reference and
// compares what each step emits (as a set: the order is pinned by the
// scenario files, and must only be by time here).
func drive[A any](t *rapid.T, cfg Config, agg Aggregator[int64, A, int64], ref reference) {
	e, err := New(cfg, agg)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "b", "c"}
	wm := int64(-1)
	steps := rapid.IntRange(1, 120).Draw(t, "steps")
	for i := range steps {
		var got, want []out
		var what string
		if spans, ok := ref.(spansRef); ok && rapid.IntRange(0, 4).Draw(t, fmt.Sprint("probe", i)) == 0 {
			// Probe a time the engine would not take as late: the answer
			// is the reference's window with the event in it, and the
			// probe must change nothing the later steps compare.
			key := rapid.SampledFrom(keys).Draw(t, fmt.Sprint("key", i))
			ts := wm + 1 - cfg.Lateness + rapid.Int64Range(0, 30+cfg.Lateness).Draw(t, fmt.Sprint("ts", i))
			v := rapid.Int64Range(-5, 9).Draw(t, fmt.Sprint("v", i))
			rs, err := e.Probe(nil, key, ts, Elem[int64]{ts, v})
			if err != nil {
				t.Fatal(err)
			}
			// The same windows without the probed event.
			if rs, err = e.Probe(rs, key, ts); err != nil {
				t.Fatal(err)
			}
			// And the first span's window as a range, the event in it.
			from := ts - cfg.Size + 1
			if rs, err = e.ProbeRange(rs, key, from, ts, Elem[int64]{ts, v}); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				got = append(got, out{key: r.Key, start: r.Window.Start, end: r.Window.End, value: r.Value, firing: r.Firing})
			}
			for _, s := range spans {
				want = append(want, s.(*naiveLookback).probe(key, ts, v))
			}
			for _, s := range spans {
				n := s.(*naiveLookback)
				var es []nElem
				for _, x := range n.events[key] {
					if x.t > ts-n.cfg.Size && x.t <= ts {
						es = append(es, x)
					}
				}
				want = append(want, out{key: key, start: ts - n.cfg.Size + 1, end: ts + 1, value: n.agg.of(es)})
			}
			want = append(want, spans[0].(*naiveLookback).probe(key, ts, v))
			if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
				t.Fatalf("step %d (probe %s %d %d):\nengine    %s\nreference %s", i, key, ts, v, g, w)
			}
			continue
		}
		if rapid.IntRange(0, 3).Draw(t, fmt.Sprint("kind", i)) == 0 {
			wm += rapid.Int64Range(0, 15).Draw(t, fmt.Sprint("advance", i))
			what = fmt.Sprintf("watermark %d", wm)
			e.Watermark(wm)
			got = collect(e, false, "", 0, 0)
			for j := 1; j < len(got); j++ {
				if got[j].end < got[j-1].end {
					t.Fatalf("step %d (%s): results out of time order: %v", i, what, got)
				}
			}
			want = ref.watermark(wm)
		} else {
			key := rapid.SampledFrom(keys).Draw(t, fmt.Sprint("key", i))
			ts := wm + rapid.Int64Range(-20, 30).Draw(t, fmt.Sprint("ts", i))
			v := rapid.Int64Range(-5, 9).Draw(t, fmt.Sprint("v", i))
			what = fmt.Sprintf("event %s %d %d", key, ts, v)
			late, err := e.Event(key, ts, v)
			if err != nil {
				t.Fatal(err)
			}
			got = collect(e, late, key, ts, v)
			want = ref.event(key, ts, v)
		}
		if g, w := fmt.Sprint(sortOuts(got)), fmt.Sprint(sortOuts(want)); g != w {
			t.Fatalf("step %d (%s):\nengine    %s\nreference %s", i, what, g, w)
		}
	}
	got := collect(e, false, "", 0, 0)
	e.Watermark(EndOfInput)
	got = append(got, collect(e, false, "", 0, 0)...)
	want := ref.watermark(EndOfInput)
	if g, w := fmt.Sprint(sortOuts(got)), fmt.Sprint(sortOuts(want)); g != w {
		t.Fatalf("end of input:\nengine    %s\nreference %s", g, w)
	}
	if s := e.Stats(); s.Keys != 0 {
		t.Fatalf("%d keys hold state after the end of input", s.Keys)
	}
}

func drawConfig(t *rapid.T, kind Kind) Config {
	cfg := Config{Kind: kind, Size: rapid.Int64Range(1, 25).Draw(t, "size")}
	if kind == Sliding {
		cfg.Slide = rapid.Int64Range(1, cfg.Size).Draw(t, "slide")
	}
	if kind != Lookback {
		cfg.Offset = rapid.Int64Range(0, 7).Draw(t, "offset")
	}
	if kind == Lookback {
		for i := range rapid.IntRange(0, 2).Draw(t, "more spans") {
			cfg.Spans = append(cfg.Spans, rapid.Int64Range(1, 25).Draw(t, fmt.Sprint("span", i)))
		}
	}
	cfg.Lateness = rapid.SampledFrom([]int64{0, 0, 1, 5, 20}).Draw(t, "lateness")
	cfg.Mode = rapid.SampledFrom([]Mode{Accumulating, Discarding}).Draw(t, "mode")
	return cfg
}

func TestSlicedMatchesCopyPerWindow(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawConfig(t, rapid.SampledFrom([]Kind{Tumbling, Sliding}).Draw(t, "kind"))
		useMax := rapid.Bool().Draw(t, "max")
		ref := &naiveAligned{cfg: cfg, agg: naiveAgg{max: useMax}, wm: noWatermark, wins: map[string]map[int64]*nWindow{}}
		if useMax {
			drive(t, cfg, intMax{}, ref)
		} else {
			drive(t, cfg, intSum{}, ref)
		}
	})
}

// spansRef is one reference per span of a multi-span lookback: the engine
// must give what separate engines of one span each would, the late events
// once.
type spansRef []reference

func (r spansRef) event(key string, t, v int64) []out {
	var res []out
	for i, ref := range r {
		for _, o := range ref.event(key, t, v) {
			if !o.late || i == 0 {
				res = append(res, o)
			}
		}
	}
	return res
}

func (r spansRef) watermark(w int64) []out {
	var res []out
	for _, ref := range r {
		res = append(res, ref.watermark(w)...)
	}
	return res
}

func TestLookbackMatchesRescan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawConfig(t, Lookback)
		useMax := rapid.Bool().Draw(t, "max")
		var ref spansRef
		for _, span := range cfg.spans() {
			one := cfg
			one.Size, one.Spans = span, nil
			ref = append(ref, &naiveLookback{cfg: one, agg: naiveAgg{max: useMax}, wm: noWatermark,
				events: map[string][]nElem{}, wins: map[string]map[int64]*nWindow{}})
		}
		if useMax {
			drive(t, cfg, intMax{}, ref)
		} else {
			drive(t, cfg, intSum{}, ref)
		}
	})
}
