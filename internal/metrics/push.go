package metrics

import "github.com/prometheus/client_golang/prometheus"

// PushStatus is one push target as the metrics see it (internal/push
// Status; the app converts).
type PushStatus struct {
	Feed, Target, State                string // Target with its secrets masked
	Bytes, Frames, Skipped, Reconnects uint64
	Lag                                float64 // seconds
}

// Pushes gives every push's status at scrape time; the app implements it.
type Pushes interface {
	PushStatuses() []PushStatus
}

// PushStates are the states camfeed_push_state reports, one series each.
var PushStates = []string{"connecting", "live", "backoff", "stopped"}

type pushCollector struct {
	src                                            Pushes
	bytes, frames, skipped, reconnects, lag, state *prometheus.Desc
}

// CollectPushes registers the camfeed_push_* metrics, labelled by feed and
// masked target.
func (m *Metrics) CollectPushes(p Pushes) {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"feed", "target"}, labels...), nil)
	}
	m.reg.MustRegister(&pushCollector{
		src:        p,
		bytes:      d("camfeed_push_bytes_total", "H.264 bytes pushed to the target, over every connection."),
		frames:     d("camfeed_push_frames_total", "Access units pushed to the target."),
		skipped:    d("camfeed_push_frames_skipped_total", "Access units the target's uplink was too slow for (skipped to a keyframe)."),
		reconnects: d("camfeed_push_reconnects_total", "Times the push connected again after a failure."),
		lag:        d("camfeed_push_lag_seconds", "How old the last unit pushed was when its write returned."),
		state:      d("camfeed_push_state", "1 for the push's current state, 0 for the others.", "state"),
	})
}

func (c *pushCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.frames, c.skipped, c.reconnects, c.lag, c.state} {
		ch <- d
	}
}

func (c *pushCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.src.PushStatuses() {
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), p.Feed, p.Target)
		}
		counter(c.bytes, p.Bytes)
		counter(c.frames, p.Frames)
		counter(c.skipped, p.Skipped)
		counter(c.reconnects, p.Reconnects)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, p.Lag, p.Feed, p.Target)
		for _, s := range PushStates {
			v := 0.0
			if s == p.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, p.Feed, p.Target, s)
		}
	}
}
