package rules

import (
	"fmt"
	"slices"
	"time"

	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/stream"
)

// A rule set's windows live in lookback engines (stream.Engine), one per
// group of terms that can share one: the same key, the same aggregate family
// and the same counting of denied transactions, over any number of spans
// (an engine keeps each key's events once for all its spans). The two
// reference rules, count over 60 s and sum(amount) over 5 min of a user,
// are one engine over two spans.

// groupDef is what one engine computes.
type groupDef struct {
	key         field
	keyIdx      int     // key's index in the set's keys
	family      aggKind // aggCount: count, sum and avg (moments over amount); aggMin; aggMax; aggDistinct
	field       field   // distinct's argument
	expr        string  // the argument expression, when not a field (see term)
	countDenied bool
	spans       []time.Duration
	longest     int64 // the longest span (ms)
	terms       []groupTerm
}

// counts reports whether the group's windows count a transaction decided
// so.
func (g *groupDef) counts(outcome Action) bool { return outcome != Deny || g.countDenied }

// same reports whether windows built for o hold exactly what g's would
// (the terms read from them may differ).
func (g *groupDef) same(o *groupDef) bool {
	return g.key == o.key && g.family == o.family && g.field == o.field && g.expr == o.expr && g.countDenied == o.countDenied && slices.Equal(g.spans, o.spans)
}

// groupTerm is where a term's value comes from in its group's results.
type groupTerm struct {
	slot, span int
	agg        aggKind
	// An aligned window (tumbling, or sliding) is the oldest of its
	// windows (one starting at offset + each multiple of slide, size long)
	// that hold the transaction, from its start to the transaction: the
	// calendar window so far when tumbling (slide = size).
	tumbling            bool
	size, slide, offset int64
	// A session window is the key's session that holds the transaction,
	// from its start to the transaction, within size before it.
	session bool
	gap     int64
}

// Set is a compiled rule set: its enabled rules, their terms and the engines
// that compute them.
type Set struct {
	rules  []*compiledRule
	terms  terms
	groups []groupDef
	keys   []field // the distinct key fields of the groups
}

// maxKeys bounds the distinct fields a rule set keys its windows by: a
// decision locks the shard of each, without allocating.
const maxKeys = 8

// NewSet compiles rules (validating them; disabled ones are left out).
func NewSet(rules []Rule) (*Set, error) {
	s := &Set{}
	seen := map[string]bool{}
	for i, r := range rules {
		if seen[r.Name] {
			return nil, &FieldError{fmt.Sprintf("rules[%d].name", i), fmt.Errorf("%q is used twice", r.Name)}
		}
		seen[r.Name] = true
		if r.Disabled {
			continue
		}
		cr, err := compileInto(r, fmt.Sprintf("rules[%d]", i), &s.terms)
		if err != nil {
			return nil, err
		}
		s.rules = append(s.rules, cr)
	}
	for slot, t := range s.terms.list {
		gk := groupDef{key: t.key, family: t.agg, countDenied: t.countDenied, expr: t.expr}
		switch t.agg {
		case aggSum, aggAvg:
			gk.family = aggCount
		case aggDistinct:
			gk.field = t.field
		}
		g := slices.IndexFunc(s.groups, func(g groupDef) bool {
			return g.key == gk.key && g.family == gk.family && g.field == gk.field && g.expr == gk.expr && g.countDenied == gk.countDenied
		})
		if g < 0 {
			s.groups = append(s.groups, gk)
			g = len(s.groups) - 1
		}
		def := &s.groups[g]
		sp := slices.Index(def.spans, t.span)
		if sp < 0 {
			def.spans = append(def.spans, t.span)
			sp = len(def.spans) - 1
			def.longest = max(def.longest, t.span.Milliseconds())
		}
		if def.keyIdx = slices.Index(s.keys, def.key); def.keyIdx < 0 {
			if len(s.keys) == maxKeys {
				return nil, fmt.Errorf("%w: the rules key their windows by more than %d different fields", ErrSpec, maxKeys)
			}
			s.keys = append(s.keys, def.key)
			def.keyIdx = len(s.keys) - 1
		}
		def.terms = append(def.terms, groupTerm{slot: slot, span: sp, agg: t.agg,
			tumbling: t.tumbling, size: t.span.Milliseconds(), slide: t.slide.Milliseconds(), offset: t.offset.Milliseconds(),
			session: t.session, gap: t.gap.Milliseconds()})
	}
	for _, r := range s.rules {
		// Every rule reads a window, so its key is one of the groups'.
		f, _ := fieldOf(r.Key)
		r.keyIdx = slices.Index(s.keys, f)
	}
	return s, nil
}

// maxSpan is the longest window of the set.
func (s *Set) maxSpan() time.Duration {
	var m time.Duration
	for _, g := range s.groups {
		for _, sp := range g.spans {
			m = max(m, sp)
		}
	}
	return m
}

// windows is one shard's engines, one per group of the set.
type windows struct {
	engines []engine
}

// engine is a group's lookback engine, whatever its value and accumulator
// types.
type engine interface {
	// probe sets the group's term values at instant t, with the extra
	// transactions counted in (each at its own time), reading nothing
	// before floor.
	probe(key string, t, floor int64, extra []*Transaction, terms []groupTerm, vals []num.Dec) error
	// add counts the transaction in the windows.
	add(key string, t int64, txn *Transaction) error
	// watermark moves time on: no transaction before w is expected.
	watermark(w int64)
	capture() (captured, error) // the state to snapshot, copied
	restore(data []byte) error
	// newest is the time of the key's newest transaction counted.
	newest(key string) (int64, bool)
	stats() stream.Stats
}

func newWindows(s *Set, lateness time.Duration) (*windows, error) {
	w := &windows{}
	for _, g := range s.groups {
		e, err := s.newGroupEngine(g, lateness)
		if err != nil {
			return nil, err
		}
		w.engines = append(w.engines, e)
	}
	return w, nil
}

// newGroupEngine builds the engine of group g of s.
func (s *Set) newGroupEngine(g groupDef, lateness time.Duration) (engine, error) {
	cfg := stream.Config{Kind: stream.Lookback, Size: g.spans[0].Milliseconds()}
	for _, sp := range g.spans[1:] {
		cfg.Spans = append(cfg.Spans, sp.Milliseconds())
	}
	// A transaction that comes late, by up to the lateness, still counts
	// where it belongs; events are kept for the longest window and the
	// lateness.
	cfg.Lateness = lateness.Milliseconds()
	amount := func(t *Transaction) num.Dec { return t.Amount }
	str := g.field.str
	if g.expr != "" {
		n := s.terms.exprs[g.expr]
		amount, str = n.numOf, n.strOf
	}
	switch g.family {
	case aggCount:
		return newEngine(cfg, stream.CountSum{}, amount, func(m stream.Moments, k aggKind) num.Dec {
			switch k {
			case aggCount:
				return num.FromInt(m.N)
			case aggSum:
				return m.Sum
			}
			return stream.Avg{}.Result(m)
		})
	case aggMin:
		return newEngine(cfg, stream.Min{}, amount, func(v num.Dec, _ aggKind) num.Dec { return v })
	case aggMax:
		return newEngine(cfg, stream.Max{}, amount, func(v num.Dec, _ aggKind) num.Dec { return v })
	case aggDistinct:
		return newEngine(cfg, stream.Distinct[string]{}, str, func(n int64, _ aggKind) num.Dec { return num.FromInt(n) })
	}
	return nil, fmt.Errorf("rules: no engine for %v", g.family)
}

type engineOf[V, A, R any] struct {
	e     *stream.Engine[V, A, R]
	agg   stream.Aggregator[V, A, R]
	value func(*Transaction) V
	read  func(R, aggKind) num.Dec
	res   []stream.Result[R]
	rr    []stream.Result[R]
	extra []stream.Elem[V]
}

func newEngine[V, A, R any](cfg stream.Config, agg stream.Aggregator[V, A, R], value func(*Transaction) V, read func(R, aggKind) num.Dec) (*engineOf[V, A, R], error) {
	e, err := stream.New(cfg, agg)
	if err != nil {
		return nil, err
	}
	return &engineOf[V, A, R]{e: e, agg: agg, value: value, read: read}, nil
}

func (g *engineOf[V, A, R]) probe(key string, t, floor int64, extra []*Transaction, terms []groupTerm, vals []num.Dec) error {
	g.extra = g.extra[:0]
	for _, x := range extra {
		g.extra = append(g.extra, stream.Elem[V]{Time: millis(x.At), Value: g.value(x)})
	}
	res, err := g.e.Probe(g.res[:0], key, t, g.extra...)
	g.res = res
	if err != nil {
		return err
	}
	for _, gt := range terms {
		from := t - gt.size + 1 // a lookback or session window's start
		if gt.tumbling {
			from = alignedStart(t, gt.size, gt.slide, gt.offset)
		} else if !gt.session && from >= floor {
			vals[gt.slot] = g.read(res[gt.span].Value, gt.agg)
			continue
		}
		lo := max(from, floor)
		if lo > t {
			// Older than anything every build of the windows keeps (a
			// transaction far later than the lateness): the extra alone.
			acc := g.agg.Init()
			for _, x := range g.extra {
				if x.Time >= from && x.Time <= t {
					acc = g.agg.Add(acc, x.Time, x.Value)
				}
			}
			vals[gt.slot] = g.read(g.agg.Result(acc), gt.agg)
			continue
		}
		if gt.session {
			// The engine keeps a span of the window's size, so it holds
			// every event since the window's start.
			if lo, err = g.e.SessionStart(key, t, gt.gap, lo, g.extra...); err != nil {
				return err
			}
		}
		rr, err := g.e.ProbeRange(g.rr[:0], key, lo, t, g.extra...)
		g.rr = rr
		if err != nil {
			return err
		}
		vals[gt.slot] = g.read(rr[0].Value, gt.agg)
	}
	return nil
}

// alignedStart is the start of the oldest window of size, one starting
// every slide from offset, that holds t: the first start after t − size.
// Tumbling (slide = size), the window that holds t.
func alignedStart(t, size, slide, offset int64) int64 {
	before := t - size
	m := (before - offset) % slide
	if m < 0 {
		m += slide
	}
	return before - m + slide
}

func (g *engineOf[V, A, R]) add(key string, t int64, txn *Transaction) error {
	_, err := g.e.Event(key, t, g.value(txn))
	// The windows' firings are not needed: decisions probe.
	g.e.Advance()
	return err
}

func (g *engineOf[V, A, R]) watermark(w int64) {
	g.e.Watermark(w)
	g.e.Advance()
}

func (g *engineOf[V, A, R]) newest(key string) (int64, bool) { return g.e.Newest(key) }

func (g *engineOf[V, A, R]) stats() stream.Stats { return g.e.Stats() }

// shardOf spreads key values over n shards, the same way in every process
// (a checkpoint holds each shard's keys): FNV-1a.
func shardOf(key string, n int) int {
	if n == 1 {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return int(h % uint64(n))
}
