package gen_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/examples/orders/gen"
	"github.com/stratadb/strata/store"
)

func openLog(t testing.TB) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readAll returns every record of the log.
func readAll(t *testing.T, l *eventlog.Log) []event.Record {
	t.Helper()
	var recs []event.Record
	for rec, err := range l.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// generate writes a history into a fresh log and returns it with its records.
func generate(t *testing.T, opts gen.Options) (gen.Result, []event.Record) {
	t.Helper()
	l := openLog(t)
	res, err := gen.Orders(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, readAll(t, l)
}

var (
	moneyRE  = regexp.MustCompile(`^(0|[1-9][0-9]*)\.[0-9]{2}$`)
	streamRE = regexp.MustCompile(`^order-g[1-9][0-9]*$`)
	// moneyFieldRE finds the money fields of order events, quoted or not.
	moneyFieldRE = regexp.MustCompile(`"(amount|tax_amount|shipping_cost|price)":("[^"]*"|[^,}]*)`)
)

func TestOrders(t *testing.T) {
	const events, customers = 20_000, 1000
	res, recs := generate(t, gen.Options{Events: events})
	reg := event.NewRegistry()
	if err := orders.Register(reg); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(730 * 24 * time.Hour)

	t.Run("counts", func(t *testing.T) {
		streams := map[string]bool{}
		for _, r := range recs {
			streams[r.Stream] = true
		}
		if res.Events != len(recs) || res.Orders != len(streams) || res.LastPosition != uint64(len(recs)) {
			t.Errorf("result %+v; the log holds %d events in %d streams", res, len(recs), len(streams))
		}
		if res.Events < events || res.Events > events+5 {
			t.Errorf("wrote %d events for Events %d", res.Events, events)
		}
		for n := 1; n <= res.Orders; n++ {
			if !streams["order-g"+strconv.Itoa(n)] {
				t.Fatalf("no stream order-g%d among %d orders", n, res.Orders)
			}
		}
	})

	t.Run("every event decodes as examples/orders", func(t *testing.T) {
		versions := map[uint32]int{}
		for i := range recs {
			r := &recs[i]
			v, err := reg.Decode(&r.Event)
			if err != nil {
				t.Fatalf("%s v%d (%s schema %d) %s: %v", r.Stream, r.Version, r.Type, r.Schema, r.Data, err)
			}
			switch e := v.(type) {
			case orders.OrderCreated:
				versions[r.Schema]++
				if !strings.HasPrefix(e.Customer, "cust-") || e.Amount.Sign() <= 0 || e.TaxAmount.IsNegative() || e.ShippingCost.IsNegative() {
					t.Fatalf("%s: %+v", r.Stream, e)
				}
			case orders.ItemAdded:
				if e.SKU == "" || e.Quantity <= 0 || e.Price.Sign() <= 0 {
					t.Fatalf("%s: %+v", r.Stream, e)
				}
			case orders.OrderShipped:
			default:
				t.Fatalf("%s: decoded %T", r.Stream, v)
			}
		}
		for v := uint32(1); v <= 3; v++ {
			if versions[v] == 0 {
				t.Errorf("no OrderCreated of schema %d: %v", v, versions)
			}
		}
	})

	t.Run("orders are well formed", func(t *testing.T) {
		byStream := map[string][]event.Record{}
		for _, r := range recs {
			byStream[r.Stream] = append(byStream[r.Stream], r)
		}
		shipped := 0
		for stream, rs := range byStream {
			if !streamRE.MatchString(stream) {
				t.Fatalf("stream %q", stream)
			}
			if len(rs) < 1 || len(rs) > 6 || rs[0].Type != "order.created" {
				t.Fatalf("%s: %d events, first %s", stream, len(rs), rs[0].Type)
			}
			for i, r := range rs {
				if r.Version != uint64(i+1) || (i > 0 && r.Position != rs[i-1].Position+1) {
					t.Fatalf("%s: not one append: event %d at version %d, position %d", stream, i, r.Version, r.Position)
				}
				if string(r.Metadata) != string(rs[0].Metadata) {
					t.Fatalf("%s: metadata %s and %s", stream, rs[0].Metadata, r.Metadata)
				}
				want := "order.item_added"
				switch {
				case i == 0:
					want = "order.created"
				case i == len(rs)-1 && r.Type == "order.shipped":
					want = "order.shipped"
					shipped++
					if i == 1 {
						t.Fatalf("%s: shipped without items", stream)
					}
				}
				if r.Type != want {
					t.Fatalf("%s: event %d is %s", stream, i, r.Type)
				}
				// Money is exact decimals with two places, as text.
				for _, m := range moneyFieldRE.FindAllSubmatch(r.Data, -1) {
					if s, err := strconv.Unquote(string(m[2])); err != nil || !moneyRE.MatchString(s) {
						t.Fatalf("%s: %s %s in %s", stream, m[1], m[2], r.Data)
					}
				}
			}
		}
		if frac := float64(shipped) / float64(len(byStream)); frac < 0.65 || frac > 0.75 {
			t.Errorf("%.2f of the orders shipped, want about 0.70", frac)
		}
	})

	t.Run("simulated time increases over the span and picks the schema", func(t *testing.T) {
		times := make([]time.Time, res.Orders+1)
		for i := range recs {
			r := &recs[i]
			if r.Type != "order.created" {
				continue
			}
			at, err := gen.At(&r.Event)
			if err != nil {
				t.Fatal(err)
			}
			if at.Location() != time.UTC || at.Before(start) || !at.Before(end) {
				t.Fatalf("%s at %v", r.Stream, at)
			}
			if third := uint32(3*at.Sub(start)/end.Sub(start)) + 1; r.Schema != third {
				t.Fatalf("%s at %v has schema %d, want %d", r.Stream, at, r.Schema, third)
			}
			n, _ := strconv.Atoi(strings.TrimPrefix(r.Stream, "order-g"))
			times[n] = at
		}
		for n := 2; n <= res.Orders; n++ {
			if times[n].Before(times[n-1]) {
				t.Fatalf("order-g%d at %v, before order-g%d at %v", n, times[n], n-1, times[n-1])
			}
		}
		if d := end.Sub(times[res.Orders]); d > 24*time.Hour {
			t.Errorf("the last order is %v before the end of the span", d)
		}
	})

	t.Run("customers are skewed", func(t *testing.T) {
		perCustomer := map[string]int{}
		for i := range recs {
			if recs[i].Type == "order.created" {
				v, _ := reg.Decode(&recs[i].Event)
				perCustomer[v.(orders.OrderCreated).Customer]++
			}
		}
		top := 0
		for c, n := range perCustomer {
			k, err := strconv.Atoi(strings.TrimPrefix(c, "cust-"))
			if err != nil || k < 1 || k > customers {
				t.Fatalf("customer %q", c)
			}
			top = max(top, n)
		}
		mean := float64(res.Orders) / customers
		if float64(top) < 10*mean {
			t.Errorf("the busiest customer placed %d orders, the mean is %.1f: not skewed", top, mean)
		}
	})
}

// streamContent is what must be the same for the same seed: everything but
// ids, positions and store times.
func streamContent(recs []event.Record) map[string][]string {
	m := map[string][]string{}
	for _, r := range recs {
		m[r.Stream] = append(m[r.Stream], fmt.Sprintf("%d %s/%d %s %s", r.Version, r.Type, r.Schema, r.Data, r.Metadata))
	}
	return m
}

func TestOrdersDeterministic(t *testing.T) {
	base := gen.Options{Events: 3000, Customers: 50, Seed: 42}
	_, recs := generate(t, base)
	want := streamContent(recs)
	cases := []struct {
		name string
		opts func(gen.Options) gen.Options
		same bool
	}{
		{"same seed", func(o gen.Options) gen.Options { return o }, true},
		{"other writers", func(o gen.Options) gen.Options { o.Writers = 3; return o }, true},
		{"one writer", func(o gen.Options) gen.Options { o.Writers = 1; return o }, true},
		{"other seed", func(o gen.Options) gen.Options { o.Seed = 43; return o }, false},
		{"other start", func(o gen.Options) gen.Options { o.Start = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC); return o }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, recs := generate(t, tc.opts(base))
			got := streamContent(recs)
			same := len(got) == len(want)
			for s, evs := range want {
				same = same && strings.Join(got[s], "\n") == strings.Join(evs, "\n")
			}
			if same != tc.same {
				t.Errorf("same content: %v, want %v", same, tc.same)
			}
		})
	}
}

// The count stops at the first order boundary at or after Events.
func TestOrdersStopsAtAnOrderBoundary(t *testing.T) {
	for _, events := range []int{0, 1, 2, 7, 100, 1001} {
		t.Run(strconv.Itoa(events), func(t *testing.T) {
			l := openLog(t)
			res, err := gen.Orders(context.Background(), l, gen.Options{Events: events, Writers: 4})
			if err != nil {
				t.Fatal(err)
			}
			head, err := l.Head(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if uint64(res.Events) != head || res.LastPosition != head {
				t.Fatalf("result %+v, head %d", res, head)
			}
			if events == 0 {
				if res != (gen.Result{}) {
					t.Fatalf("Events 0 wrote %+v", res)
				}
				return
			}
			last := 0
			for _, err := range l.ReadStream(context.Background(), "order-g"+strconv.Itoa(res.Orders), store.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				last++
			}
			if res.Events < events || res.Events-last >= events {
				t.Errorf("wrote %d events (the last order has %d) for Events %d", res.Events, last, events)
			}
		})
	}
}

// countingAppender counts appends and fails from the failAt-th on (0: never).
type countingAppender struct {
	calls  atomic.Int64
	failAt int64
}

var errDisk = errors.New("disk on fire")

func (c *countingAppender) Append(ctx context.Context, stream string, _ store.ExpectedVersion, evs ...event.Event) (store.AppendResult, error) {
	n := c.calls.Add(1)
	if c.failAt > 0 && n >= c.failAt {
		return store.AppendResult{}, errDisk
	}
	return store.AppendResult{Version: uint64(len(evs)), FirstPosition: 1, LastPosition: uint64(len(evs))}, ctx.Err()
}

func TestOrdersBadOptions(t *testing.T) {
	cases := []struct {
		opts gen.Options
		want string
	}{
		{gen.Options{Events: -1}, "Events is -1"},
		{gen.Options{Events: 10, Customers: -5}, "Customers is -5"},
		{gen.Options{Events: 10, Writers: -1}, "Writers is -1"},
		{gen.Options{Events: 10, Span: -time.Hour}, "Span is -1h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			var c countingAppender
			res, err := gen.Orders(context.Background(), &c, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "must not be negative") {
				t.Errorf("error %v, want one saying %q must not be negative", err, tc.want)
			}
			if c.calls.Load() != 0 || res != (gen.Result{}) {
				t.Errorf("bad options appended %d times, result %+v", c.calls.Load(), res)
			}
		})
	}
}

// The first failed append stops every writer and is returned.
func TestOrdersStopsOnAppendError(t *testing.T) {
	c := countingAppender{failAt: 50}
	res, err := gen.Orders(context.Background(), &c, gen.Options{Events: 100_000, Writers: 8})
	if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "order-g") {
		t.Fatalf("error %v, want the append's, naming the stream", err)
	}
	if calls := c.calls.Load(); calls > 50+8 {
		t.Errorf("%d appends after the failure at 50", calls)
	}
	if res.Orders >= 50 {
		t.Errorf("result %+v counts failed appends", res)
	}
}

func TestOrdersCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var c countingAppender
	if _, err := gen.Orders(ctx, &c, gen.Options{Events: 100}); !errors.Is(err, context.Canceled) || c.calls.Load() != 0 {
		t.Errorf("error %v after %d appends", err, c.calls.Load())
	}
}

func TestAt(t *testing.T) {
	cases := []struct {
		md   string
		want time.Time
		ok   bool
	}{
		{`{"at":"2024-03-01T12:00:05Z"}`, time.Date(2024, 3, 1, 12, 0, 5, 0, time.UTC), true},
		{`{}`, time.Time{}, false},
		{``, time.Time{}, false},
		{`{"at":"yesterday"}`, time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := gen.At(&event.Event{Metadata: []byte(tc.md)})
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("At(%s) = %v, %v", tc.md, got, err)
		}
	}
}

// Stream names depend only on the order number: a second run into the same
// log fails on its first order instead of mixing two histories.
func TestOrdersTwiceConflicts(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	if _, err := gen.Orders(ctx, l, gen.Options{Events: 50}); err != nil {
		t.Fatal(err)
	}
	_, err := gen.Orders(ctx, l, gen.Options{Events: 50})
	if !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Errorf("second run into the same log: %v, want wrong expected version", err)
	}
}

// BenchmarkOrders generates 200,000 events into a fresh log (SyncNone) per
// iteration; opening and closing the log are not timed.
func BenchmarkOrders(b *testing.B) {
	const events = 200_000
	written := 0
	for range b.N {
		b.StopTimer()
		dir, err := os.MkdirTemp(b.TempDir(), "log")
		if err != nil {
			b.Fatal(err)
		}
		l, err := eventlog.Open(dir, eventlog.Options{Durability: eventlog.SyncNone})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := gen.Orders(context.Background(), l, gen.Options{Events: events})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		written += res.Events
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "events/s")
}
