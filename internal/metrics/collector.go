package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// feedCollector turns each feed's hub.Stats into metrics at scrape time.
type feedCollector struct {
	feeds Feeds

	frames, keyframes, bytesIn, bytesOut, skips, overflows, restarts *prometheus.Desc
	fps, bitrate, gop, buffered, bufferedSeconds, lastFrame          *prometheus.Desc
	viewers, state, cameraDropped                                    *prometheus.Desc
}

func newFeedCollector(f Feeds) *feedCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"feed"}, labels...), nil)
	}
	return &feedCollector{
		feeds:           f,
		frames:          d("camfeed_frames_total", "Access units (frames) received from the source."),
		keyframes:       d("camfeed_keyframes_total", "Keyframes (IDR access units) received from the source."),
		bytesIn:         d("camfeed_bytes_in_total", "H.264 bytes received from the source."),
		bytesOut:        d("camfeed_bytes_out_total", "H.264 bytes delivered to viewers, all outputs."),
		skips:           d("camfeed_skips_total", "Times a slow viewer jumped ahead to the newest keyframe."),
		overflows:       d("camfeed_gop_overflows_total", "Times a GOP outgrew twice the feed's buffer budget."),
		restarts:        d("camfeed_source_restarts_total", "Times the source was restarted after it failed or stalled."),
		fps:             d("camfeed_fps", "Frames per second over the last two seconds."),
		bitrate:         d("camfeed_bitrate_bits_per_second", "Bitrate over the last two seconds."),
		gop:             d("camfeed_gop_frames", "Access units between the last two keyframes."),
		buffered:        d("camfeed_buffered_bytes", "Bytes held in the feed's buffer."),
		bufferedSeconds: d("camfeed_buffered_seconds", "Span of video held in the feed's buffer."),
		lastFrame:       d("camfeed_last_frame_timestamp_seconds", "Unix time of the newest access unit; 0 before the first."),
		viewers:         d("camfeed_viewers", "Viewers connected now, by protocol.", "protocol"),
		state:           d("camfeed_source_state", "1 for the source's current state, 0 for the others.", "state"),
		cameraDropped: d("camfeed_camera_frames_dropped_total",
			"Frames the camera captured that never reached the encoder's output, from gaps in rpicam-vid's sensor timestamps; only where they are available."),
	}
}

func (c *feedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.keyframes, c.bytesIn, c.bytesOut, c.skips, c.overflows, c.restarts,
		c.fps, c.bitrate, c.gop, c.buffered, c.bufferedSeconds, c.lastFrame, c.viewers, c.state, c.cameraDropped} {
		ch <- d
	}
}

func (c *feedCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, name := range c.feeds.FeedNames() {
		st, src, ok := c.feeds.FeedStats(name)
		if !ok {
			continue
		}
		counter(c.frames, st.Units, name)
		counter(c.keyframes, st.Keyframes, name)
		counter(c.bytesIn, st.BytesIn, name)
		counter(c.bytesOut, st.BytesOut, name)
		counter(c.skips, st.Skips, name)
		counter(c.overflows, st.GOPOverflows, name)
		counter(c.restarts, src.Restarts, name)
		if src.HasCameraDropped {
			counter(c.cameraDropped, src.CameraDropped, name)
		}
		gauge(c.fps, st.FPS, name)
		gauge(c.bitrate, st.Bitrate, name)
		gauge(c.gop, float64(st.GOP), name)
		gauge(c.buffered, float64(st.BufferedBytes), name)
		gauge(c.bufferedSeconds, st.Buffered.Seconds(), name)
		last := 0.0
		if !st.LastUnit.IsZero() {
			last = float64(st.LastUnit.UnixNano()) / float64(time.Second)
		}
		gauge(c.lastFrame, last, name)
		for proto, n := range st.Viewers {
			gauge(c.viewers, float64(n), name, proto)
		}
		for _, s := range SourceStates {
			v := 0.0
			if s == src.State {
				v = 1
			}
			gauge(c.state, v, name, s)
		}
		if src.State != "" && !slices.Contains(SourceStates, src.State) {
			gauge(c.state, 1, name, src.State)
		}
	}
}
