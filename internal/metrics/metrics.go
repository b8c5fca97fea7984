// Package metrics serves camfeed's Prometheus metrics at /metrics. It uses
// its own registry, never the global one, so that nothing a library
// registers leaks in and tests can build as many as they like.
//
// Per-feed numbers are read from the hub at scrape time (a collector, not
// counters kept in step), so the hot path pays nothing for them. The two
// histograms, viewer lag and ingest-to-send latency, are observed by the
// outputs through a Viewer handle that costs no allocation per call.
package metrics

import (
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/camfeed/camfeed/internal/hub"
)

// SourceStatus is the supervisor's view of a feed's source.
type SourceStatus struct {
	State    string // one of the SourceStates
	Restarts uint64 // times the source was restarted after failing or stalling
	// CameraDropped counts the frames the camera dropped since start
	// (rpicam-vid's sensor timestamps), when HasCameraDropped.
	CameraDropped    uint64
	HasCameraDropped bool
}

// SourceStates are the states camfeed_source_state reports, each as its
// own series (1 for the current state, 0 for the others), so a dashboard
// can graph time spent in each. An unknown state is reported too.
var SourceStates = []string{"starting", "running", "stalled", "backoff", "stopped"}

// Feeds is what the collector reads at scrape time; the app implements it.
type Feeds interface {
	// FeedNames returns the current feeds (after a reload, the new ones).
	FeedNames() []string
	// FeedStats returns a feed's hub stats and source status; ok is false
	// when the feed went away meanwhile.
	FeedStats(name string) (st hub.Stats, src SourceStatus, ok bool)
}

// Metrics holds the registry and the histograms.
type Metrics struct {
	reg     *prometheus.Registry
	lag     *prometheus.HistogramVec
	latency *prometheus.HistogramVec
	refused *prometheus.CounterVec
	full    *prometheus.CounterVec
	conns   prometheus.Counter
}

// Buckets, in seconds. Lag is how far behind live a viewer is when a unit
// is sent (the lag budget is 500ms by default, so the buckets bracket it);
// ingest-to-send is from the unit's arrival to its write to the viewer's
// socket returning, which on a Pi is well under a millisecond when all
// is well.
var (
	LagBuckets     = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
)

// New builds the metrics for feeds, with the Go runtime and process
// collectors and camfeed_build_info. version is the binary's version.
func New(feeds Feeds, version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.lag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "camfeed_viewer_lag_seconds",
		Help:    "How far behind the newest access unit a viewer was when a unit was sent to it.",
		Buckets: LagBuckets,
	}, []string{"feed", "protocol"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "camfeed_ingest_to_send_seconds",
		Help:    "Time from an access unit's arrival from the source to its write to a viewer completing.",
		Buckets: LatencyBuckets,
	}, []string{"feed", "protocol"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "camfeed_auth_refused_total",
		Help: "Requests refused by authentication (unauthenticated), authorization (forbidden), or the wrong-password throttle (throttled).",
	}, []string{"reason"})
	m.conns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "camfeed_connections_refused_total",
		Help: "TCP connections closed at once because their address had max_conns_per_ip open.",
	})
	m.full = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "camfeed_viewers_rejected_total",
		Help: "Viewers turned away with 503 because a limit was reached.",
	}, []string{"limit"})
	goVersion, rev := "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "camfeed_build_info",
		Help:        "Always 1; the labels say which camfeed is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion, "revision": rev},
	})
	build.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.lag, m.latency, m.refused, m.full, m.conns,
	)
	if feeds != nil {
		m.reg.MustRegister(newFeedCollector(feeds))
	}
	return m
}

// Registry lets other packages add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics or protobuf when the scraper asks). Wrap it in
// auth.Middleware(auth.Read, nil).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // promhttp's own error counters
		MaxRequestsInFlight: 2,     // a Pi does not need parallel scrapes
		Timeout:             10 * time.Second,
	})
}

// Viewer is one viewer's handle on the histograms. Get it once when the
// viewer joins; its methods do not allocate, so outputs call them per
// access unit. The zero Viewer (and one from a nil *Metrics) does nothing.
type Viewer struct {
	lag, latency prometheus.Observer
}

// Viewer returns the handle for a viewer of feed over protocol (the same
// output names the hub counts viewers by: http, tcp, rtsp, webrtc, hls,
// ws, ...).
func (m *Metrics) Viewer(feed, protocol string) Viewer {
	if m == nil {
		return Viewer{}
	}
	return Viewer{lag: m.lag.WithLabelValues(feed, protocol), latency: m.latency.WithLabelValues(feed, protocol)}
}

// ObserveLag records how far behind live the viewer was.
func (v Viewer) ObserveLag(d time.Duration) {
	if v.lag != nil {
		v.lag.Observe(d.Seconds())
	}
}

// ObserveIngestToSend records the time from a unit's arrival to its send.
func (v Viewer) ObserveIngestToSend(d time.Duration) {
	if v.latency != nil {
		v.latency.Observe(d.Seconds())
	}
}

// ForgetFeed drops a removed feed's histogram series (after a reload), so
// they stop being exported.
func (m *Metrics) ForgetFeed(feed string) {
	if m == nil {
		return
	}
	m.lag.DeletePartialMatch(prometheus.Labels{"feed": feed})
	m.latency.DeletePartialMatch(prometheus.Labels{"feed": feed})
}

// AuthRefused counts a refusal; reason is "unauthenticated", "forbidden"
// or "throttled".
func (m *Metrics) AuthRefused(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

// ConnRefused counts a connection closed by the per-address cap.
func (m *Metrics) ConnRefused() {
	if m != nil {
		m.conns.Inc()
	}
}

// ViewerRejected counts a viewer refused by a limit ("feed" or "ip").
func (m *Metrics) ViewerRejected(limit string) {
	if m != nil {
		m.full.WithLabelValues(limit).Inc()
	}
}
