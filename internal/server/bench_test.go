package server

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/rules"
)

// go test -c -o /tmp/server.bench ./internal/server
// /tmp/server.bench -test.run '^$' -test.bench HTTPAppend -test.benchtime 2000000x
// /tmp/server.bench -test.run '^$' -test.bench HTTPAuthorize -test.benchtime 100000x [-http-rate 5000]
//
// The API over real loopback TCP (httptest.Server, keep-alive connections)
// on a durable log (fsync before acknowledging, group commit): what a
// client on the same machine sees, JSON, huma and net/http included. The
// clients run in the same process, on the same cores, as the server.

var (
	httpCallers = flag.Int("http-callers", 16, "BenchmarkHTTPAppend: concurrent callers")
	httpBatch   = flag.Int("http-batch", 100, "BenchmarkHTTPAppend: events per request")
	httpRate    = flag.Float64("http-rate", 10_000, "BenchmarkHTTPAuthorize: requests per second, started on a schedule (0: 64 callers as fast as they can)")
	httpUsers   = flag.Int("http-users", 100_000, "BenchmarkHTTPAuthorize: users")
)

// benchServer serves Strata over loopback TCP on a durable log in a
// temporary directory, with the reference rules when withRules, and
// returns its URL and a client that keeps up to conns connections open:
// with fewer idle connections than callers, connections would be closed
// and dialled again, and the benchmark would measure TCP handshakes.
func benchServer(b *testing.B, withRules bool, conns int) (string, *http.Client) {
	l, err := eventlog.Open(b.TempDir(), eventlog.Options{Durability: eventlog.SyncAlways})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Close(); err != nil {
			b.Error(err)
		}
	})
	opts := Options{Store: l}
	if withRules {
		a, err := rules.Open(context.Background(), l, rules.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := a.Close(context.Background()); err != nil {
				b.Error(err)
			}
		})
		opts.Rules = a
	}
	srv := New(opts)
	ts := httptest.NewServer(srv)
	b.Cleanup(func() { ts.Close(); srv.Close() })
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns, conns
	client := &http.Client{Transport: tr}
	b.Cleanup(client.CloseIdleConnections)
	return ts.URL, client
}

// post sends body and reads the whole response: the latency of a request
// ends when its answer is in, and a body left unread would cost the
// connection.
func post(client *http.Client, url string, body []byte) (int, []byte, error) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// failures keeps the first failed request and counts the others, so that
// a broken run says what went wrong once rather than b.N times.
type failures struct {
	n     atomic.Int64
	once  sync.Once
	first string
}

func (f *failures) check(status int, body []byte, err error) bool {
	if err == nil && status == http.StatusOK {
		return true
	}
	f.n.Add(1)
	f.once.Do(func() {
		if err != nil {
			f.first = err.Error()
		} else {
			f.first = fmt.Sprintf("status %d: %.300s", status, body)
		}
	})
	return false
}

func (f *failures) report(b *testing.B, total int) {
	if n := f.n.Load(); n > 0 {
		b.Errorf("%d of %d requests failed; the first: %s", n, total, f.first)
	}
}

func reportLatency(b *testing.B, unit string, n int, lat []time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), unit)
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}

// BenchmarkHTTPAppend: batches of -http-batch events of about 100 bytes
// of JSON each, over 1,000 streams, from -http-callers callers. b.N counts
// events, so ns/op is per event; the latencies are per request.
func BenchmarkHTTPAppend(b *testing.B) {
	callers, batch := *httpCallers, *httpBatch
	if callers < 1 || batch < 1 {
		b.Fatal("-http-callers and -http-batch must be at least 1")
	}
	url, client := benchServer(b, false, callers)
	streams := make([]string, 1000)
	for i := range streams {
		streams[i] = fmt.Sprintf("%s/v1/streams/s-%d?expect=any", url, i)
	}
	// With expect=any and no ids, the server gives each event a fresh id:
	// one body serves every request, and the callers spend no CPU (shared
	// with the server) building JSON.
	body := func(n int) []byte {
		var sb strings.Builder
		sb.WriteString(`{"events":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"type":"order-placed","data":{"order":"o-%08d","sku":"sku-%05d","qty":%d,"price":"%d.%02d","note":"benchmark payload, gift"}}`,
				i, i*7919%100_000, 1+i%5, 1+i*37%300, i%100)
		}
		sb.WriteString(`]}`)
		return []byte(sb.String())
	}
	full := body(batch)
	requests := (b.N + batch - 1) / batch
	last := body(b.N - (requests-1)*batch)
	var fail failures
	// A few requests per caller first, untimed: the connections are
	// dialled and the server's pools filled before the clock starts.
	closedLoop(4*callers, callers, func(r int) bool {
		return fail.check(post(client, streams[r%len(streams)], full))
	})
	lat := make([]time.Duration, requests)
	b.ResetTimer()
	closedLoop(requests, callers, func(r int) bool {
		req := full
		if r == requests-1 {
			req = last
		}
		start := time.Now()
		ok := fail.check(post(client, streams[r%len(streams)], req))
		lat[r] = time.Since(start)
		return ok
	})
	b.StopTimer()
	fail.report(b, callers*4+requests)
	reportLatency(b, "events/s", b.N, lat)
}

// BenchmarkHTTPAuthorize: POST /v1/authorize for -http-users users at
// -http-rate requests per second (open loop: a slow answer does not slow
// the arrivals), or from 64 callers as fast as they can with -http-rate 0.
// It reports the rate achieved, the latencies and the share denied.
func BenchmarkHTTPAuthorize(b *testing.B) {
	const (
		pool    = 256 // goroutines of the open loop
		callers = 64  // of the closed loop
		warm    = 2_000
	)
	url, client := benchServer(b, true, pool)
	url += "/v1/authorize"
	// The bodies are made before the clock starts, so that the callers
	// spend no CPU (shared with the server) on them.
	g := newHTTPTxnGen(*httpUsers)
	txns := make([][]byte, warm+b.N)
	for i := range txns {
		txns[i] = g.next()
	}
	var fail failures
	var denied atomic.Int64
	call := func(i int) bool {
		status, body, err := post(client, url, txns[i])
		if bytes.Contains(body, []byte(`"outcome":"deny"`)) {
			denied.Add(1)
		}
		return fail.check(status, body, err)
	}
	closedLoop(warm, callers, call)
	denied.Store(0)
	lat := make([]time.Duration, b.N)
	timed := func(i int) bool {
		start := time.Now()
		ok := call(warm + i)
		lat[i] = time.Since(start)
		return ok
	}
	b.ResetTimer()
	if *httpRate > 0 {
		openLoop(b.N, *httpRate, pool, timed)
	} else {
		closedLoop(b.N, callers, timed)
	}
	b.StopTimer()
	fail.report(b, warm+b.N)
	reportLatency(b, "requests/s", b.N, lat)
	b.ReportMetric(float64(denied.Load())/float64(b.N), "denied/req")
}

// closedLoop calls call(0) to call(n-1) from callers goroutines, each
// starting its next request when its last is answered; a caller stops at
// its first failure.
func closedLoop(n, callers int, call func(int) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || !call(i) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// openLoop starts call(i) at i/rate seconds, each on a goroutine of a pool.
// Latency is measured inside call, from when its goroutine starts it: the
// schedule's own lateness is not the server's (a sleep overshoots by up to
// a millisecond, then a burst of requests goes out together), and a stall
// of the server still shows, in the requests it holds up. When the server
// falls behind the schedule, requests queue here, outside the latencies,
// and the rate reported falls short of -http-rate.
func openLoop(n int, rate float64, pool int, call func(int) bool) {
	work := make(chan int, n)
	var wg sync.WaitGroup
	for range pool {
		wg.Go(func() {
			for i := range work {
				call(i)
			}
		})
	}
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		work <- i
	}
	close(work)
	wg.Wait()
}

// httpTxnGen is a deterministic stream of /v1/authorize bodies, as
// rules.txnGen makes transactions: users drawn uniformly, event time
// advancing 100 µs per transaction on average from a fixed instant (so
// the windows hold what a steady 10,000 transactions a second would
// leave in them, whatever the benchmark's own rate), amounts up to $300.
type httpTxnGen struct {
	x     uint64
	at    time.Time
	users []string
}

func newHTTPTxnGen(users int) *httpTxnGen {
	g := &httpTxnGen{x: 88172645463325252, at: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), users: make([]string, max(users, 1))}
	for i := range g.users {
		g.users[i] = fmt.Sprint("user-", i)
	}
	return g
}

func (g *httpTxnGen) next() []byte {
	g.x ^= g.x << 13
	g.x ^= g.x >> 7
	g.x ^= g.x << 17
	g.at = g.at.Add(time.Duration(g.x%200) * time.Microsecond)
	cents := (g.x >> 40) % 30_000
	return fmt.Appendf(nil, `{"user_id":%q,"amount":"%d.%02d","at":%q}`,
		g.users[g.x%uint64(len(g.users))], cents/100, cents%100, g.at.Truncate(time.Millisecond).Format(time.RFC3339Nano))
}
