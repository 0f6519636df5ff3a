package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/pgstore"
)

// metrics are what /metrics exposes, in Prometheus' text format.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	events    prometheus.Counter
	decisions *prometheus.CounterVec
	subs      prometheus.Gauge
	// following holds each live subscription's last delivered position
	// (*atomic.Uint64 keys).
	following sync.Map
}

// staller is a log that can be held back by another's open transaction
// (pgstore.Store).
type staller interface {
	Stall() pgstore.Stall
}

// logStats is the embedded log's counters (eventlog.Log has them; another
// store simply has no log_* metrics).
type logStats interface {
	Stats(context.Context) (eventlog.Stats, error)
}

func (s *Server) newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_http_requests_total", Help: "HTTP requests by operation and status.",
		}, []string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_http_request_duration_seconds", Help: "HTTP request latency by operation (subscriptions excluded).",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"operation"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_appended_events_total", Help: "Events appended over HTTP.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_rule_decisions_total", Help: "Authorization decisions by outcome.",
		}, []string{"outcome"}),
		subs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_subscriptions_active", Help: "Live subscriptions (SSE) open now.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.events, m.decisions, m.subs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if ls, ok := s.opts.Store.(logStats); ok {
		m.reg.MustRegister(logCollector{ls})
	}
	if st, ok := s.opts.Store.(staller); ok {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_log_stalled_seconds", Help: "How long committed events have waited for an older open transaction in the PostgreSQL cluster (0: the log is not held back); the server log names the transaction.",
		}, func() float64 { return st.Stall().For.Seconds() }))
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_log_stalled_events", Help: "Committed events that cannot be positioned yet because an older transaction is open in the PostgreSQL cluster.",
		}, func() float64 { return float64(st.Stall().Waiting) }))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_subscription_lag_events", Help: "Events the furthest-behind live subscription (SSE) has not been sent yet (0: none open, or all caught up). A subscription that filters skips events it does not want, so its lag counts them until one it wants is sent.",
	}, func() float64 {
		head, err := s.opts.Store.Head(context.Background())
		if err != nil {
			return 0
		}
		var lag uint64
		m.following.Range(func(k, _ any) bool {
			if p := k.(*atomic.Uint64).Load(); head > p && head-p > lag {
				lag = head - p
			}
			return true
		})
		return float64(lag)
	}))
	if s.opts.Rules != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_rule_window_keys", Help: "Keys (users, per window family and key field) holding transactions in the fraud rules' windows.",
		}, func() float64 { return float64(s.opts.Rules.WindowStats().Keys) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strata_rule_window_events_total", Help: "Transactions counted into the fraud rules' windows since they were built.",
		}, func() float64 { return float64(s.opts.Rules.WindowStats().Events) }))
	}
	if s.opts.ReadModels != nil || s.opts.Shared != nil {
		m.reg.MustRegister(projectionCollector{s})
	}
	return m
}

// projectionCollector reads each projection's status at each scrape.
type projectionCollector struct{ s *Server }

var (
	projPosition = prometheus.NewDesc("strata_projection_position", "The log position a projection's serving version has applied.", []string{"projection"}, nil)
	projLag      = prometheus.NewDesc("strata_projection_lag_events", "Events in the log its serving version has not applied yet.", []string{"projection"}, nil)
	projLagSec   = prometheus.NewDesc("strata_projection_lag_seconds", "How long the oldest event it has not applied has waited.", []string{"projection"}, nil)
	projState    = prometheus.NewDesc("strata_projection_state", "1 for the state its serving version is in (running, paused, failed, stopped, building).", []string{"projection", "state"}, nil)
	projBuilding = prometheus.NewDesc("strata_projection_build_remaining_events", "Events a version being built still has to apply before it follows live (0: none building).", []string{"projection"}, nil)
)

func (c projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{projPosition, projLag, projLagSec, projState, projBuilding} {
		ch <- d
	}
}

func (c projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	head, err := c.s.opts.Store.Head(ctx)
	if err != nil {
		return
	}
	var all []readmodels.Status
	if sh := c.s.opts.Shared; sh != nil {
		if all, err = sh.List(ctx, head); err != nil {
			return
		}
	} else {
		cat := c.s.opts.ReadModels
		list, err := readmodels.List(ctx, cat)
		if err != nil {
			return
		}
		for _, l := range list {
			if st, err := readmodels.ReadStatus(ctx, cat, c.s.opts.Store, l.Name, head); err == nil {
				all = append(all, st)
			}
		}
	}
	for _, st := range all {
		ch <- prometheus.MustNewConstMetric(projPosition, prometheus.GaugeValue, float64(st.Position), st.Name)
		ch <- prometheus.MustNewConstMetric(projLag, prometheus.GaugeValue, float64(st.LagEvents), st.Name)
		ch <- prometheus.MustNewConstMetric(projLagSec, prometheus.GaugeValue, st.LagSeconds, st.Name)
		ch <- prometheus.MustNewConstMetric(projState, prometheus.GaugeValue, 1, st.Name, string(st.State))
		remaining := 0.0
		if b := st.Building; b != nil && b.Until > b.Position {
			remaining = float64(b.Until - b.Position)
		}
		ch <- prometheus.MustNewConstMetric(projBuilding, prometheus.GaugeValue, remaining, st.Name)
	}
}

// middleware counts and times every operation huma serves.
func (m *metrics) middleware(ctx huma.Context, next func(huma.Context)) {
	start := time.Now()
	next(ctx)
	op := ctx.Operation().OperationID
	m.requests.WithLabelValues(op, strconv.Itoa(ctx.Status())).Inc()
	if op != "subscribe" && op != "alerts" { // streams: their duration is the client's
		m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// logCollector reads the log's counters at each scrape.
type logCollector struct{ log logStats }

var (
	logHead    = prometheus.NewDesc("strata_log_head_position", "The position of the last acknowledged event.", nil, nil)
	logStreams = prometheus.NewDesc("strata_log_streams", "Streams with at least one event.", nil, nil)
	logBytes   = prometheus.NewDesc("strata_log_segment_bytes", "Bytes in segment files.", nil, nil)
	logAppends = prometheus.NewDesc("strata_log_appends_total", "Acknowledged appends since the log opened (their rate over strata_log_fsyncs_total's is the group-commit batch size).", nil, nil)
	logSyncs   = prometheus.NewDesc("strata_log_fsyncs_total", "Segment fsyncs since the log opened.", nil, nil)
	logSyncSec = prometheus.NewDesc("strata_log_fsync_seconds_total", "Time spent in segment fsyncs since the log opened.", nil, nil)
	logIndexed = prometheus.NewDesc("strata_log_index_lag_events", "Events acknowledged but not yet in the persisted stream index.", nil, nil)
	logBatches = prometheus.NewDesc("strata_log_fsync_batch_appends", "Appends one group-commit fsync covered.", nil, nil)
)

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{logHead, logStreams, logBytes, logAppends, logSyncs, logSyncSec, logIndexed, logBatches} {
		ch <- d
	}
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.log.Stats(context.Background())
	if err != nil {
		return // closed: nothing to say
	}
	ch <- prometheus.MustNewConstMetric(logHead, prometheus.GaugeValue, float64(st.Head))
	ch <- prometheus.MustNewConstMetric(logStreams, prometheus.GaugeValue, float64(st.Streams))
	ch <- prometheus.MustNewConstMetric(logBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(logAppends, prometheus.CounterValue, float64(st.Appends))
	ch <- prometheus.MustNewConstMetric(logSyncs, prometheus.CounterValue, float64(st.Syncs))
	ch <- prometheus.MustNewConstMetric(logSyncSec, prometheus.CounterValue, st.SyncTime.Seconds())
	ch <- prometheus.MustNewConstMetric(logIndexed, prometheus.GaugeValue, float64(st.Head-min(st.Indexed, st.Head)))
	// Cumulative buckets; the sum is estimated from each bucket's bound
	// (the log counts batches, not their exact sizes).
	buckets := map[float64]uint64{}
	var count uint64
	var sum float64
	for i, bound := range eventlog.SyncBatchBounds {
		count += st.SyncBatches[i]
		buckets[float64(bound)] = count
		sum += float64(st.SyncBatches[i]) * float64(bound)
	}
	over := st.SyncBatches[len(eventlog.SyncBatchBounds)]
	count += over
	sum += float64(over) * float64(2*eventlog.SyncBatchBounds[len(eventlog.SyncBatchBounds)-1])
	ch <- prometheus.MustNewConstHistogram(logBatches, count, sum, buckets)
}
