package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/feed"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// fakeSource writes frames of the test pattern, then waits for the end.
type fakeSource struct{ frames int }

func (f fakeSource) String() string { return "fake" }

func (f fakeSource) Run(ctx context.Context, sink source.Sink) error {
	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240})
	if err != nil {
		return err
	}
	for range f.frames {
		nalus, _ := g.Next(time.Now())
		sink.WriteAU(nalus)
	}
	<-ctx.Done()
	return ctx.Err()
}

type feeds []*feed.Feed

func (f feeds) Feeds() []*feed.Feed { return f }

// runFeed runs a feed of fake frames until the test ends.
func runFeed(t *testing.T, name string, frames int) *feed.Feed {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := feed.New(name, fakeSource{frames}, hub.New(hub.Config{}), feed.Options{}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if frames > 0 {
		testsupport.Eventually(t, name+" running", func() bool { return f.Hub().Stats().Units >= uint64(frames) })
	}
	return f
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestHealth: /healthz is 200 while every feed delivers, and 503 naming
// the feed and its source's state when one does not.
func TestHealth(t *testing.T) {
	cam := runFeed(t, "cam", 5)
	door := runFeed(t, "door", 0)

	base := testsupport.Serve(t, (&Handlers{Feeds: feeds{cam}}).Register)
	code, hdr, body := get(t, base+"/healthz")
	if code != http.StatusOK || body != "1 feed ok\n" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("healthy: %d %q %v", code, body, hdr)
	}

	base = testsupport.Serve(t, (&Handlers{Feeds: feeds{cam, door}}).Register)
	code, _, body = get(t, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "feed door: no video yet (source fake is ") || strings.Contains(body, "feed cam") {
		t.Errorf("a feed without video: %d %q, want 503 naming feed door only", code, body)
	}
}

// TestHealthStale: a feed whose last frame is older than HealthWindow is
// unhealthy, and the reason says for how long.
func TestHealthStale(t *testing.T) {
	cam := runFeed(t, "cam", 5)
	last := cam.Status().LastUnit
	if ok, why := Healthy([]*feed.Feed{cam}, last.Add(HealthWindow)); !ok {
		t.Errorf("at the edge of the window: %s", why)
	}
	ok, why := Healthy([]*feed.Feed{cam}, last.Add(3*time.Second))
	if ok || !strings.HasPrefix(why, "feed cam: no video for 3s (source fake is running") {
		t.Errorf("3 s after the last frame: %v %q", ok, why)
	}
}

// TestStatus: /api/v1/status reports each feed by name, sorted, with its
// picture size and counters.
func TestStatus(t *testing.T) {
	cam := runFeed(t, "cam", 31)
	door := runFeed(t, "door", 0)
	h := &Handlers{Feeds: feeds{door, cam}, Version: "1.2.3", Started: time.Now().Add(-time.Minute),
		Extra: func(name string) map[string]any { return map[string]any{"rtsp": name} }}
	base := testsupport.Serve(t, h.Register)
	code, hdr, body := get(t, base+"/api/v1/status")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", code, hdr)
	}
	var st struct {
		Version string       `json:"version"`
		Uptime  float64      `json:"uptime_seconds"`
		Feeds   []FeedStatus `json:"feeds"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "1.2.3" || st.Uptime < 60 || len(st.Feeds) != 2 {
		t.Fatalf("status %+v", st)
	}
	c, d := st.Feeds[0], st.Feeds[1]
	if c.Name != "cam" || d.Name != "door" {
		t.Fatalf("feeds %q, %q: want sorted cam, door", c.Name, d.Name)
	}
	if c.Source != "fake" || c.State != "running" || c.Width != 320 || c.Height != 240 || c.Frames != 31 || c.Keyframes < 1 ||
		c.LastFrame == nil || c.Profile == "" || c.Extra["rtsp"] != "cam" {
		t.Errorf("cam %+v", c)
	}
	if d.Frames != 0 || d.LastFrame != nil || d.Width != 0 || d.Profile != "" {
		t.Errorf("door %+v", d)
	}
}

func TestRound(t *testing.T) {
	for _, c := range []struct {
		v    float64
		d    int
		want float64
	}{{29.976, 2, 29.98}, {1234.4, 0, 1234}, {0.05, 1, 0.1}, {0, 2, 0}} {
		if got := round(c.v, c.d); got != c.want {
			t.Errorf("round(%v, %d) = %v, want %v", c.v, c.d, got, c.want)
		}
	}
}
