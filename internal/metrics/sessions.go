package metrics

import "github.com/prometheus/client_golang/prometheus"

// SessionTotals add up one feed's viewer sessions of one protocol, open
// and ended, as the door counts them.
type SessionTotals struct {
	Sessions, Bytes, Skips uint64
}

// Sessions gives the door's totals per protocol; the app implements it.
type Sessions interface {
	SessionTotals(feed string) map[string]SessionTotals
}

// sessionCollector reads the door's totals at scrape time: the same
// figures for every protocol.
type sessionCollector struct {
	feeds                  Feeds
	src                    Sessions
	sessions, bytes, skips *prometheus.Desc
}

// CollectSessions registers the per-protocol session counters.
func (m *Metrics) CollectSessions(feeds Feeds, s Sessions) {
	l := []string{"feed", "protocol"}
	m.reg.MustRegister(&sessionCollector{
		feeds: feeds, src: s,
		sessions: prometheus.NewDesc("camfeed_viewer_sessions_total", "Viewer sessions admitted by the door, by protocol.", l, nil),
		bytes:    prometheus.NewDesc("camfeed_viewer_bytes_total", "Bytes sent to viewers, by protocol (as each output counts them: H.264, RTP, fMP4 or files).", l, nil),
		skips:    prometheus.NewDesc("camfeed_viewer_skips_total", "Times a viewer skipped ahead to a keyframe, by protocol.", l, nil),
	})
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sessions
	ch <- c.bytes
	ch <- c.skips
}

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, feed := range c.feeds.FeedNames() {
		for proto, t := range c.src.SessionTotals(feed) {
			ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.CounterValue, float64(t.Sessions), feed, proto)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.Bytes), feed, proto)
			ch <- prometheus.MustNewConstMetric(c.skips, prometheus.CounterValue, float64(t.Skips), feed, proto)
		}
	}
}
