package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/camfeed/camfeed/internal/hub"
)

// fakeFeeds is the small fake the Feeds interface allows.
type fakeFeeds struct {
	mu    sync.Mutex
	names []string
	stats map[string]hub.Stats
	src   map[string]SourceStatus
}

func (f *fakeFeeds) FeedNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.names...)
}

func (f *fakeFeeds) FeedStats(name string) (hub.Stats, SourceStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.stats[name]
	return st, f.src[name], ok
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	last := time.Unix(1_700_000_000, 500_000_000)
	feeds := &fakeFeeds{
		names: []string{"cam", "door"},
		stats: map[string]hub.Stats{
			"cam": {Units: 900, Keyframes: 30, BytesIn: 4_000_000, BytesOut: 12_000_000, Skips: 3, GOPOverflows: 1,
				Viewers: map[string]int{"http": 2, "webrtc": 1}, BufferedBytes: 1 << 20, Buffered: 2 * time.Second,
				FPS: 30, Bitrate: 4e6, GOP: 30, LastUnit: last},
			"door": {},
		},
		src: map[string]SourceStatus{"cam": {State: "running", Restarts: 2, CameraDropped: 7, HasCameraDropped: true}, "door": {State: "backoff"}},
	}
	m := New(feeds, "1.2.3")
	v := m.Viewer("cam", "http")
	v.ObserveLag(120 * time.Millisecond)
	v.ObserveLag(30 * time.Millisecond)
	v.ObserveIngestToSend(400 * time.Microsecond)
	m.AuthRefused("unauthenticated")
	m.ViewerRejected("ip")

	fams := scrape(t, m.Handler())
	cam := map[string]string{"feed": "cam"}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"camfeed_frames_total", cam, 900},
		{"camfeed_keyframes_total", cam, 30},
		{"camfeed_bytes_in_total", cam, 4e6},
		{"camfeed_bytes_out_total", cam, 12e6},
		{"camfeed_skips_total", cam, 3},
		{"camfeed_gop_overflows_total", cam, 1},
		{"camfeed_source_restarts_total", cam, 2},
		{"camfeed_camera_frames_dropped_total", cam, 7},
		{"camfeed_fps", cam, 30},
		{"camfeed_bitrate_bits_per_second", cam, 4e6},
		{"camfeed_gop_frames", cam, 30},
		{"camfeed_buffered_bytes", cam, 1 << 20},
		{"camfeed_buffered_seconds", cam, 2},
		{"camfeed_last_frame_timestamp_seconds", cam, 1_700_000_000.5},
		{"camfeed_last_frame_timestamp_seconds", map[string]string{"feed": "door"}, 0},
		{"camfeed_viewers", map[string]string{"feed": "cam", "protocol": "http"}, 2},
		{"camfeed_viewers", map[string]string{"feed": "cam", "protocol": "webrtc"}, 1},
		{"camfeed_source_state", map[string]string{"feed": "cam", "state": "running"}, 1},
		{"camfeed_source_state", map[string]string{"feed": "cam", "state": "backoff"}, 0},
		{"camfeed_source_state", map[string]string{"feed": "door", "state": "backoff"}, 1},
		{"camfeed_viewer_lag_seconds", map[string]string{"feed": "cam", "protocol": "http"}, 2},
		{"camfeed_ingest_to_send_seconds", map[string]string{"feed": "cam", "protocol": "http"}, 1},
		{"camfeed_auth_refused_total", map[string]string{"reason": "unauthenticated"}, 1},
		{"camfeed_viewers_rejected_total", map[string]string{"limit": "ip"}, 1},
		{"camfeed_build_info", map[string]string{"version": "1.2.3"}, 1},
	}
	for _, tt := range tests {
		got, ok := value(t, fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v missing", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, ok := value(t, fams, "camfeed_camera_frames_dropped_total", map[string]string{"feed": "door"}); ok {
		t.Error("frames dropped by the camera shown for a feed without them")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if f := fams["camfeed_frames_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("frames type %v", f.GetType())
	}
	h := fams["camfeed_viewer_lag_seconds"].Metric[0].Histogram
	if h.GetSampleSum() < 0.149 || h.GetSampleSum() > 0.151 {
		t.Errorf("lag sum %v, want 0.15", h.GetSampleSum())
	}
	for _, b := range h.Bucket {
		if b.GetUpperBound() == 0.05 && b.GetCumulativeCount() != 1 {
			t.Errorf("lag ≤ 50ms: %d, want 1", b.GetCumulativeCount())
		}
	}

	// A reload drops "door": its series go away.
	feeds.mu.Lock()
	feeds.names = []string{"cam"}
	feeds.mu.Unlock()
	m.ForgetFeed("cam")
	fams = scrape(t, m.Handler())
	if _, ok := value(t, fams, "camfeed_source_state", map[string]string{"feed": "door"}); ok {
		t.Error("a removed feed is still exported")
	}
	if _, ok := fams["camfeed_viewer_lag_seconds"]; ok {
		t.Error("ForgetFeed left histogram series")
	}
}

func TestOwnRegistry(t *testing.T) {
	// Two instances must not collide, as they would on the global registry.
	a, b := New(&fakeFeeds{}, "a"), New(&fakeFeeds{}, "b")
	fams := scrape(t, b.Handler())
	if _, ok := value(t, fams, "camfeed_build_info", map[string]string{"version": "a"}); ok {
		t.Error("instances share a registry")
	}
	_ = a
	if !strings.HasPrefix(fams["camfeed_build_info"].GetHelp(), "Always 1") {
		t.Error("help text")
	}
}

func TestNilSafe(t *testing.T) {
	var m *Metrics
	v := m.Viewer("cam", "http")
	v.ObserveLag(time.Second)
	v.ObserveIngestToSend(time.Second)
	m.ForgetFeed("cam")
	m.AuthRefused("forbidden")
	m.ViewerRejected("feed")
}

func TestObserveDoesNotAllocate(t *testing.T) {
	v := New(nil, "").Viewer("cam", "http")
	if n := testing.AllocsPerRun(1000, func() {
		v.ObserveLag(80 * time.Millisecond)
		v.ObserveIngestToSend(300 * time.Microsecond)
	}); n != 0 {
		t.Errorf("%v allocations per observation, want 0", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	v := New(nil, "").Viewer("cam", "http")
	b.ReportAllocs()
	for b.Loop() {
		v.ObserveLag(80 * time.Millisecond)
		v.ObserveIngestToSend(300 * time.Microsecond)
	}
}

func BenchmarkScrape(b *testing.B) {
	feeds := &fakeFeeds{names: []string{"cam"}, stats: map[string]hub.Stats{"cam": {Viewers: map[string]int{"http": 3}}},
		src: map[string]SourceStatus{"cam": {State: "running"}}}
	h := New(feeds, "").Handler()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	}
}
