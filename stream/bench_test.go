package stream

import (
	"flag"
	"fmt"
	"runtime"
	"testing"

	"github.com/stratadb/strata/num"
)

// The benchmarks measure events per second on one goroutine (one core) and
// the heap each key holds, against baselines written here in the simplest
// way: a copy-per-window sliding window, the rescan-everything lookback of
// Flink's public fraud demo, and a hand-written deque that knows only the
// two reference fraud rules.
//
//	go test ./stream -run '^$' -bench . -benchtime 10000000x

// txGen is a deterministic stream of transactions: keys drawn uniformly
// from keys, event time advancing by gapMicros µs per event on average.
type txGen struct {
	x, micros uint64
	gap       uint64
	keys      []string
}

func newTxGen(keys int, gapMicros uint64) *txGen {
	g := &txGen{x: 88172645463325252, gap: gapMicros, keys: make([]string, keys)}
	for i := range g.keys {
		g.keys[i] = fmt.Sprintf("user-%d", i)
	}
	return g
}

func (g *txGen) next() (key string, ts int64, v num.Dec) {
	g.x ^= g.x << 13
	g.x ^= g.x >> 7
	g.x ^= g.x << 17
	g.micros += g.x % (2 * g.gap)
	return g.keys[g.x%uint64(len(g.keys))], int64(g.micros / 1000), num.FromMicro(int64(g.x>>40) % 1_000_000_000)
}

// reportState reports the heap a run's state holds per key: the live heap
// with it, less the live heap once drop has let it go.
func reportState(b *testing.B, keys int, drop func()) {
	with := heapNow()
	drop()
	without := heapNow()
	if keys > 0 {
		b.ReportMetric(float64(int64(with)-int64(without))/float64(keys), "B/key")
	}
}

func heapNow() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// warmup is how many events fill a window of span ms when they come gap µs
// apart: benchmarks of windows measure the steady state, after it.
func warmup(span int64, gap uint64) int { return int(uint64(span) * 1000 / gap) }

// steady runs step warm times untimed (to fill the windows), then b.N
// times timed, and reports events per second.
func steady(b *testing.B, warm int, step func()) {
	for range warm {
		step()
	}
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSliding: sliding 60 s / 1 s count+sum with 1,000,000 keys
// (events 1 ms apart: a key has an event every 1,000 s on average, so
// each event opens 60 windows of its own), sliced into panes
// against a copy of every event in each of the 60 windows it belongs to.
func BenchmarkSliding(b *testing.B) {
	const keys = 1_000_000
	cfg := Config{Kind: Sliding, Size: 60_000, Slide: 1_000}
	b.Run("sliced", func(b *testing.B) {
		g := newTxGen(keys, 1000)
		e, err := New(cfg, CountSum{})
		if err != nil {
			b.Fatal(err)
		}
		results := uint64(0)
		steady(b, 0, func() {
			k, ts, v := g.next()
			e.Watermark(ts - 1)
			if _, err := e.Event(k, ts, v); err != nil {
				b.Fatal(err)
			}
			results += uint64(len(e.Ready()))
			e.Advance()
		})
		b.ReportMetric(float64(results)/float64(b.N), "results/event")
		reportState(b, e.Stats().Keys, func() { e = nil })
	})
	b.Run("copy-per-window", func(b *testing.B) {
		g := newTxGen(keys, 1000)
		n := newNaiveSliding(cfg.Size, cfg.Slide)
		results := uint64(0)
		steady(b, 0, func() {
			k, ts, v := g.next()
			results += uint64(n.watermark(ts - 1))
			n.event(k, ts, v)
		})
		b.ReportMetric(float64(results)/float64(b.N), "results/event")
		reportState(b, len(n.keys), func() { n = nil })
	})
}

// naiveSliding copies each event into every window it belongs to and, when
// a window fires, folds its copies: the copy-per-window implementation.
type naiveSliding struct {
	size, slide int64
	keys        map[string]map[int64][]Elem[num.Dec] // key → window start → events
	byEnd       map[int64][]string                   // window end → keys with such a window
	fired       int64
}

func newNaiveSliding(size, slide int64) *naiveSliding {
	return &naiveSliding{size: size, slide: slide, keys: map[string]map[int64][]Elem[num.Dec]{}, byEnd: map[int64][]string{}, fired: -1 << 62}
}

func (n *naiveSliding) event(k string, ts int64, v num.Dec) {
	ws := n.keys[k]
	if ws == nil {
		ws = map[int64][]Elem[num.Dec]{}
		n.keys[k] = ws
	}
	for s := alignDown(ts, 0, n.slide); s > ts-n.size; s -= n.slide {
		if ws[s] == nil {
			n.byEnd[s+n.size] = append(n.byEnd[s+n.size], k)
		}
		ws[s] = append(ws[s], Elem[num.Dec]{ts, v})
	}
}

// watermark fires the windows ending by w+1 and returns how many.
func (n *naiveSliding) watermark(w int64) int {
	fired := 0
	if n.fired == -1<<62 { // the first watermark comes before any event
		n.fired = alignDown(w, 0, n.slide)
	}
	for end := alignDown(n.fired, 0, n.slide) + n.slide; end-1 <= w; end += n.slide {
		for _, k := range n.byEnd[end] {
			ws := n.keys[k]
			var acc Moments
			for _, e := range ws[end-n.size] {
				acc = addMoments(acc, e.Value)
			}
			_ = acc
			fired++
			delete(ws, end-n.size)
			if len(ws) == 0 {
				delete(n.keys, k)
			}
		}
		delete(n.byEnd, end)
		n.fired = end
	}
	return fired
}

// BenchmarkLookback: for every transaction, the count and sum of its
// user's last 60 s, with 1,000 users and events 100 µs apart (about 600
// per user per minute): the engine's running aggregate against rescanning
// every event the user has in the window, as Flink's fraud demo does.
func BenchmarkLookback(b *testing.B) {
	const keys = 1_000
	b.Run("engine", func(b *testing.B) {
		g := newTxGen(keys, 100)
		e, err := New(Config{Kind: Lookback, Size: 60_000}, CountSum{})
		if err != nil {
			b.Fatal(err)
		}
		steady(b, warmup(60_000, 100), func() {
			k, ts, v := g.next()
			e.Watermark(ts - 1)
			if _, err := e.Event(k, ts, v); err != nil {
				b.Fatal(err)
			}
			e.Advance()
		})
	})
	b.Run("rescan", func(b *testing.B) {
		g := newTxGen(keys, 100)
		state := map[string][]Elem[num.Dec]{}
		var sink Moments
		steady(b, warmup(60_000, 100), func() {
			k, ts, v := g.next()
			es := append(state[k], Elem[num.Dec]{ts, v})
			// Rescan: every kept event, evicting the expired.
			var acc Moments
			kept := es[:0]
			for _, e := range es {
				if e.Time > ts-60_000 {
					kept = append(kept, e)
					acc = addMoments(acc, e.Value)
				}
			}
			state[k] = kept
			sink = acc
		})
		_ = sink
	})
}

var fraudKeys int

func init() { flag.IntVar(&fraudKeys, "fraud-users", 100_000, "users in BenchmarkFraudRules") }

// BenchmarkFraudRules: the two reference rules ("more than 10
// transactions in any 60 s", "over $5,000 in any 5 min") fed every
// transaction (after 5 minutes of them, so that the windows are full),
// -fraud-users users (100,000: about 30 events per user in 5 minutes),
// events 100 µs apart: two lookback engines, one engine over both spans,
// the rescan of Flink's fraud demo, and a hand-written per-user deque that
// computes exactly those two numbers and nothing else.
func BenchmarkFraudRules(b *testing.B) {
	keys := fraudKeys
	b.Run("engine", func(b *testing.B) {
		g := newTxGen(keys, 100)
		count, err := New(Config{Kind: Lookback, Size: 60_000}, Count[num.Dec]{})
		if err != nil {
			b.Fatal(err)
		}
		sum, err := New(Config{Kind: Lookback, Size: 300_000}, Sum{})
		if err != nil {
			b.Fatal(err)
		}
		alerts := 0
		limit := num.FromInt(5000)
		steady(b, warmup(3*300_000, 100), func() {
			k, ts, v := g.next()
			count.Watermark(ts - 1)
			sum.Watermark(ts - 1)
			if _, err := count.Event(k, ts, v); err != nil {
				b.Fatal(err)
			}
			if _, err := sum.Event(k, ts, v); err != nil {
				b.Fatal(err)
			}
			for _, r := range count.Ready() {
				if r.Value > 10 {
					alerts++
				}
			}
			for _, r := range sum.Ready() {
				if r.Value.Cmp(limit) > 0 {
					alerts++
				}
			}
			count.Advance()
			sum.Advance()
		})
		reportState(b, sum.Stats().Keys, func() { count, sum = nil, nil })
	})
	b.Run("engine-two-spans", func(b *testing.B) {
		// One lookback engine over both spans: count+sum over 60 s and
		// over 5 min, each event's two windows from one event array.
		g := newTxGen(keys, 100)
		e, err := New(Config{Kind: Lookback, Size: 60_000, Spans: []int64{300_000}}, CountSum{})
		if err != nil {
			b.Fatal(err)
		}
		alerts := 0
		limit := num.FromInt(5000)
		steady(b, warmup(3*300_000, 100), func() {
			k, ts, v := g.next()
			e.Watermark(ts - 1)
			if _, err := e.Event(k, ts, v); err != nil {
				b.Fatal(err)
			}
			for _, r := range e.Ready() {
				if r.Window.End-r.Window.Start == 60_000 {
					if r.Value.N > 10 {
						alerts++
					}
				} else if r.Value.Sum.Cmp(limit) > 0 {
					alerts++
				}
			}
			e.Advance()
		})
		reportState(b, e.Stats().Keys, func() { e = nil })
	})
	b.Run("rescan", func(b *testing.B) {
		// Flink's fraud demo: keep the user's events of the longest span
		// and rescan them all for every event.
		g := newTxGen(keys, 100)
		state := map[string][]Elem[num.Dec]{}
		alerts := 0
		limit := num.FromInt(5000)
		steady(b, warmup(3*300_000, 100), func() {
			k, ts, v := g.next()
			es := append(state[k], Elem[num.Dec]{ts, v})
			kept := es[:0]
			var n60 int
			var sum num.Dec
			for _, e := range es {
				if e.Time > ts-300_000 {
					kept = append(kept, e)
					sum = sum.Add(e.Value)
					if e.Time > ts-60_000 {
						n60++
					}
				}
			}
			state[k] = kept
			if n60 > 10 {
				alerts++
			}
			if sum.Cmp(limit) > 0 {
				alerts++
			}
		})
		reportState(b, len(state), func() { state = nil })
	})
	b.Run("hand-written", func(b *testing.B) {
		g := newTxGen(keys, 100)
		type user struct {
			ts  []int64
			amt []num.Dec
			n1  int // events in the last 60 s are ts[len-n1:]
			sum num.Dec
		}
		users := map[string]*user{}
		alerts := 0
		limit := num.FromInt(5000)
		steady(b, warmup(3*300_000, 100), func() {
			k, ts, v := g.next()
			u := users[k]
			if u == nil {
				u = &user{}
				users[k] = u
			}
			u.ts, u.amt = append(u.ts, ts), append(u.amt, v)
			u.sum = u.sum.Add(v)
			u.n1++
			for u.n1 > 0 && u.ts[len(u.ts)-u.n1] <= ts-60_000 {
				u.n1--
			}
			drop := 0
			for drop < len(u.ts) && u.ts[drop] <= ts-300_000 {
				u.sum = u.sum.Sub(u.amt[drop])
				drop++
			}
			u.ts, u.amt = u.ts[drop:], u.amt[drop:]
			if u.n1 > 10 {
				alerts++
			}
			if u.sum.Cmp(limit) > 0 {
				alerts++
			}
		})
		reportState(b, len(users), func() { users = nil })
	})
}
