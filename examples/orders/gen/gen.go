// Package gen owns the order-history generator: a deterministic, fast
// producer of realistic order streams (examples/orders' event types and JSON)
// for tests, benchmarks and `strata gen orders`.
//
// Each order is one stream "order-g<N>" (N = 1, 2, …), written with
// store.NoStream in a single Append holding OrderCreated, 0–4 ItemAdded and,
// for about 70% of orders, OrderShipped (only orders with items are shipped,
// as the decider requires). Orders are spread evenly over the simulated span,
// in order of N; each event's metadata is {"at":"<RFC3339 UTC>"}, the
// simulated time of its order. OrderCreated is schema version 1 in the
// span's first third, 2 (adds tax_amount) in the second and 3 (adds
// shipping_cost) in the last. Customers "cust-<k>" follow a Zipf
// distribution: a few customers place many of the orders.
//
// Output is deterministic: the streams and their events (type, schema, data,
// metadata) depend only on Seed, Events, Customers, Start and Span. Event ids
// and global positions are the store's: how the writers' appends interleave
// varies from run to run.
package gen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Appender is the part of store.Store the generator needs.
type Appender interface {
	Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error)
}

// Options configure Orders. The zero value of every field but Events picks
// its default.
type Options struct {
	// Events is how many events to write: generation stops at the first
	// order boundary at or after it (Result.Events is the exact count).
	// 0 writes nothing.
	Events int
	// Customers is the number of distinct customer ids. Default 1000.
	Customers int
	// Seed selects the history; the same seed (and other options) gives the
	// same streams. Default (and 0) is 1.
	Seed int64
	// Start is the first simulated day. Default 2024-01-01T00:00:00Z (two
	// years before 2026-01-01).
	Start time.Time
	// Span is the length of the simulated history. Default 730 days.
	Span time.Duration
	// Writers is the number of concurrent appenders, so that appends share
	// group commits. It does not change what is written. Default 16.
	Writers int
}

// Result says what Orders wrote.
type Result struct {
	// Events and Orders count the events and orders (streams) written.
	Events, Orders int
	// LastPosition is the highest global position of the appended events.
	LastPosition uint64
}

// Event type names and schema versions, as examples/orders registers them.
const (
	typeCreated = "order.created"
	typeItem    = "order.item_added"
	typeShipped = "order.shipped"
)

const (
	maxItems = 4
	// zipfS and zipfV shape the customer distribution: P(k) ∝ (zipfV+k)^-zipfS.
	// With 1000 customers the busiest places about 5% of the orders (50
	// times the mean) and the ten busiest about a quarter.
	zipfS = 1.1
	zipfV = 5
	skus  = 500
)

var (
	defaultStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	defaultSpan  = 730 * 24 * time.Hour
)

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Events < 0:
		return o, fmt.Errorf("gen: Options.Events is %d, must not be negative", o.Events)
	case o.Customers < 0:
		return o, fmt.Errorf("gen: Options.Customers is %d, must not be negative", o.Customers)
	case o.Writers < 0:
		return o, fmt.Errorf("gen: Options.Writers is %d, must not be negative", o.Writers)
	case o.Span < 0:
		return o, fmt.Errorf("gen: Options.Span is %v, must not be negative", o.Span)
	}
	if o.Customers == 0 {
		o.Customers = 1000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Start.IsZero() {
		o.Start = defaultStart
	}
	o.Start = o.Start.UTC()
	if o.Span == 0 {
		o.Span = defaultSpan
	}
	if o.Writers == 0 {
		o.Writers = 16
	}
	return o, nil
}

// Orders writes a generated order history to s. Orders are split over
// opts.Writers goroutines; the first failed append stops them all, and the
// error is returned with the counts of what was written until then. Bad
// options are reported before anything is written.
func Orders(ctx context.Context, s Appender, opts Options) (Result, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	// The number of orders comes first: order times are spread over the
	// span by order number. An order's shape is drawn first from its own
	// seed, so this pass and the writers agree.
	seed1 := mix(uint64(o.Seed))
	planner := newRNG(seed1)
	orders, total := 0, 0
	for total < o.Events {
		planner.reset(uint64(orders + 1))
		items, shipped := planner.shape()
		total += 1 + items + b2i(shipped)
		orders++
	}
	if orders == 0 {
		return Result{}, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := plan{opts: o, seed1: seed1, orders: uint64(orders), spanSec: uint64(o.Span / time.Second)}
	writers := min(o.Writers, orders)
	results := make([]Result, writers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range writers {
		wg.Go(func() {
			g := newWriter(&p)
			res := &results[w]
			for n := uint64(w + 1); n <= p.orders; n += uint64(writers) {
				stream, evs := g.order(n)
				r, err := s.Append(ctx, stream, store.NoStream, evs...)
				if err != nil {
					errOnce.Do(func() {
						firstErr = fmt.Errorf("gen: append %s: %w", stream, err)
						cancel()
					})
					return
				}
				res.Events += len(evs)
				res.Orders++
				res.LastPosition = max(res.LastPosition, r.LastPosition)
			}
		})
	}
	wg.Wait()
	var sum Result
	for _, r := range results {
		sum.Events += r.Events
		sum.Orders += r.Orders
		sum.LastPosition = max(sum.LastPosition, r.LastPosition)
	}
	return sum, firstErr
}

// At returns the simulated time of a generated event, from its metadata.
func At(e *event.Event) (time.Time, error) {
	var md struct {
		At *time.Time `json:"at"`
	}
	if err := json.Unmarshal(e.Metadata, &md); err != nil {
		return time.Time{}, fmt.Errorf("gen: metadata %q: %w", e.Metadata, err)
	}
	if md.At == nil {
		return time.Time{}, fmt.Errorf("gen: metadata %q has no \"at\"", e.Metadata)
	}
	return *md.At, nil
}

// plan is what every writer shares.
type plan struct {
	opts    Options
	seed1   uint64
	orders  uint64
	spanSec uint64
}

// rng draws an order's values from a source seeded by the order number, so
// that an order's content never depends on which writer produced it.
type rng struct {
	pcg   rand.PCG
	r     *rand.Rand
	seed1 uint64
}

func newRNG(seed1 uint64) *rng {
	g := &rng{seed1: seed1}
	g.r = rand.New(&g.pcg)
	return g
}

func (g *rng) reset(n uint64) { g.pcg.Seed(g.seed1, mix(n^0x6f72646572)) }

// shape is the first draw of every order: its item count and whether it
// ships. Only orders with items ship (the decider refuses the others);
// 7/8 of the 4/5 with items is 70%.
func (g *rng) shape() (items int, shipped bool) {
	items = g.r.IntN(maxItems + 1)
	shipped = g.r.IntN(8) < 7 && items > 0
	return items, shipped
}

// writer builds orders into byte and event arenas that are only ever
// appended to: slices handed to Append are never overwritten, whatever the
// store keeps of them.
type writer struct {
	p    *plan
	rng  *rng
	zipf *rand.Zipf
	buf  []byte
	evs  []event.Event
}

const (
	arenaBytes  = 256 << 10
	arenaEvents = 4096
	// maxOrderBytes bounds one order's data, metadata and stream name.
	maxOrderBytes = 1024
)

func newWriter(p *plan) *writer {
	g := newRNG(p.seed1)
	return &writer{p: p, rng: g, zipf: rand.NewZipf(g.r, zipfS, zipfV, uint64(p.opts.Customers-1))}
}

// order builds order n (1-based): its stream name and events.
func (w *writer) order(n uint64) (string, []event.Event) {
	g := w.rng
	g.reset(n)
	items, shipped := g.shape()
	k := 1 + items + b2i(shipped)
	if cap(w.buf)-len(w.buf) < maxOrderBytes {
		w.buf = make([]byte, 0, arenaBytes)
	}
	if cap(w.evs)-len(w.evs) < k {
		w.evs = make([]event.Event, 0, arenaEvents)
	}
	evs := w.evs[len(w.evs) : len(w.evs)+k : len(w.evs)+k]
	w.evs = w.evs[:len(w.evs)+k]
	b := w.buf
	mark := len(b)

	// When: order n's slot of the span, and a second within it. Slots keep
	// the orders' times in order of n.
	lo, hi := w.p.slot(n-1), w.p.slot(n)
	sec := lo
	if hi > lo {
		sec += g.r.Uint64N(hi - lo)
	}
	version := uint32(1 + min(3*sec/max(w.p.spanSec, 1), 2))
	b = append(b, `{"at":"`...)
	b = w.p.opts.Start.Add(time.Duration(sec)*time.Second).AppendFormat(b, time.RFC3339)
	b = append(b, `"}`...)
	md := b[mark:len(b):len(b)]

	mark = len(b)
	b = append(b, `{"customer":"cust-`...)
	b = strconv.AppendUint(b, w.zipf.Uint64()+1, 10)
	amount := 500 + g.r.Int64N(50_000) // 5.00 … 504.99
	b = append(b, `","amount":"`...)
	b = appendCents(b, amount)
	if version >= 2 {
		b = append(b, `","tax_amount":"`...)
		b = appendCents(b, (amount*8+50)/100) // 8%, half up
	}
	if version >= 3 {
		b = append(b, `","shipping_cost":"`...)
		b = appendCents(b, [...]int64{0, 495, 990}[g.r.IntN(3)])
	}
	b = append(b, `"}`...)
	evs[0] = event.Event{Type: typeCreated, Schema: version, Data: b[mark:len(b):len(b)], Metadata: md}

	for i := range items {
		mark = len(b)
		b = append(b, `{"sku":"sku-`...)
		b = strconv.AppendInt(b, 1+g.r.Int64N(skus), 10)
		b = append(b, `","quantity":`...)
		b = strconv.AppendInt(b, 1+g.r.Int64N(5), 10)
		b = append(b, `,"price":"`...)
		b = appendCents(b, 100+g.r.Int64N(20_000)) // 1.00 … 200.99
		b = append(b, `"}`...)
		evs[1+i] = event.Event{Type: typeItem, Schema: 1, Data: b[mark:len(b):len(b)], Metadata: md}
	}
	if shipped {
		mark = len(b)
		b = append(b, `{}`...)
		evs[k-1] = event.Event{Type: typeShipped, Schema: 1, Data: b[mark:len(b):len(b)], Metadata: md}
	}

	mark = len(b)
	b = append(b, "order-g"...)
	b = strconv.AppendUint(b, n, 10)
	stream := string(b[mark:])
	w.buf = b
	return stream, evs
}

// slot returns the second (from Start) where the slot of the order after
// the first i begins: spanSec*i/orders, without overflow.
func (p *plan) slot(i uint64) uint64 {
	hi, lo := bits.Mul64(p.spanSec, i)
	q, _ := bits.Div64(hi, lo, p.orders) // hi < orders since i <= orders
	return q
}

// appendCents appends c/100 with exactly two decimals ("123.45").
func appendCents(b []byte, c int64) []byte {
	b = strconv.AppendInt(b, c/100, 10)
	r := c % 100
	return append(b, '.', byte('0'+r/10), byte('0'+r%10))
}

// mix is SplitMix64's finalizer: neighbouring seeds and order numbers give
// unrelated PCG states.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
