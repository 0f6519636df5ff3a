package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stratadb/strata/eventlog"
)

// metrics are what /metrics exposes, in Prometheus' text format.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	events    prometheus.Counter
	decisions *prometheus.CounterVec
	subs      prometheus.Gauge
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
	return m
}

// middleware counts and times every operation huma serves.
func (m *metrics) middleware(ctx huma.Context, next func(huma.Context)) {
	start := time.Now()
	next(ctx)
	op := ctx.Operation().OperationID
	m.requests.WithLabelValues(op, strconv.Itoa(ctx.Status())).Inc()
	if op != "subscribe" {
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
)

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{logHead, logStreams, logBytes, logAppends, logSyncs, logSyncSec, logIndexed} {
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
}
