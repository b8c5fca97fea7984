package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestAuthOnEveryHTTPOutput: with a user and no anonymous reading, every
// output refuses an anonymous or wrong-password client with 401, and lets
// the user in; the health check stays open.
func TestAuthOnEveryHTTPOutput(t *testing.T) {
	t.Parallel()
	hash := testHash(t, "s3cret")
	no := false
	ta := startApp(t, func(c *config.Config) {
		c.Users = []auth.User{{Name: "alice", Password: hash, Permissions: []string{"read"}}}
		c.AnonymousRead = &no
		c.Limits.MaxAuthFailuresPerIP = 0 // more wrong passwords than the default allows; throttling: internal/hostile
	})
	ta.waitFrames(t, "cam", 5)
	paths := []struct{ method, path string }{
		{"GET", "/stream.h264"}, {"GET", "/cam/stream.h264"}, {"GET", "/cam/ws"},
		{"GET", "/cam/index.m3u8"}, {"GET", "/cam/clip.mp4?seconds=1"}, {"GET", "/cam/snapshot.jpg?keyframe=1"},
		{"GET", "/api/v1/status"}, {"GET", "/metrics"}, {"GET", "/cam/"}, {"POST", "/api/v1/feeds/cam/clips"},
	}
	do := func(method, path, user, pass string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 3*testsupport.Patience)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, ta.url(path), strings.NewReader(""))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range paths {
		if got := do(p.method, p.path, "", ""); got != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s: %d, want 401", p.method, p.path, got)
		}
		if got := do(p.method, p.path, "alice", "wrong"); got != http.StatusUnauthorized {
			t.Errorf("wrong password %s %s: %d, want 401", p.method, p.path, got)
		}
	}
	for _, p := range []string{"/stream.h264", "/api/v1/status", "/metrics", "/cam/"} {
		if got := do("GET", p, "alice", "s3cret"); got != http.StatusOK {
			t.Errorf("alice GET %s: %d, want 200", p, got)
		}
	}
	// Saving a clip needs publish; alice may only read.
	if got := do("POST", "/api/v1/feeds/cam/clips", "alice", "s3cret"); got != http.StatusForbidden {
		t.Errorf("alice POST clips: %d, want 403", got)
	}
	if got := do("GET", "/healthz", "", ""); got != http.StatusOK {
		t.Errorf("healthz: %d", got)
	}
	if !strings.Contains(ta.logs.String(), "alice") {
		t.Error("refusals not logged")
	}
}

// TestViewerLimit: a feed at its viewer limit answers 503 with the reason.
func TestViewerLimit(t *testing.T) {
	t.Parallel()
	ta := startApp(t, func(c *config.Config) { c.Limits.MaxViewersPerFeed = 1 })
	ta.waitFrames(t, "cam", 5)
	first, _ := httpGet(t, ta.url("/stream.h264"), 10*time.Second)
	if first.StatusCode != 200 {
		t.Fatalf("first viewer: %d", first.StatusCode)
	}
	resp, err := http.Get(ta.url("/cam/stream.h264"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "maximum of 1 viewers") {
		t.Fatalf("second viewer: %d %q", resp.StatusCode, body)
	}
}

// TestPublicPathsCannotReachVideo: the viewer's assets are open to all
// (guard.go), so a path that starts with /assets/ but leads elsewhere,
// by "..", encoded slashes or backslashes, must not get an anonymous
// client the stream or the status. (The assets are embedded: nothing
// serves files from disk, so there is no file to escape to.)
func TestPublicPathsCannotReachVideo(t *testing.T) {
	t.Parallel()
	no := false
	ta := startApp(t, func(c *config.Config) {
		c.Users = []auth.User{{Name: "alice", Password: "plain:pw", Permissions: []string{"read"}}}
		c.AnonymousRead = &no
	})
	ta.waitFrames(t, "cam", 5)
	for _, target := range []string{"stream.h264", "cam/stream.h264", "api/v1/status", "cam/snapshot.jpg"} {
		for _, p := range []string{"/assets/../" + target, "/assets/..%2f" + strings.ReplaceAll(target, "/", "%2f"),
			"/assets/%2e%2e/" + target, "/assets/..\\" + target, "/assets/./../" + target, "/assets//../" + target} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*testsupport.Patience)
			req, _ := http.NewRequestWithContext(ctx, "GET", ta.url(p), nil)
			resp, err := http.DefaultClient.Do(req) // follows redirects
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			ct := resp.Header.Get("Content-Type")
			resp.Body.Close()
			cancel()
			if resp.StatusCode == http.StatusOK && (ct == "video/h264" || ct == "application/json" || ct == "image/jpeg") {
				t.Errorf("anonymous GET %s: %d %s, want no video or status", p, resp.StatusCode, ct)
			}
		}
	}
	// The assets themselves stay open.
	resp, err := http.Get(ta.url("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}

// TestMetricsScrape: /metrics serves camfeed's own registry.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	ta := startApp(t, nil)
	ta.waitFrames(t, "cam", 40)
	v, _ := httpGet(t, ta.url("/stream.h264"), testsupport.Patience)
	var rec recorder
	readFor(v.Body, 500*time.Millisecond, &rec)
	resp, err := http.Get(ta.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`camfeed_build_info`, `feed="cam"`, `camfeed_viewer_lag_seconds_bucket`, `camfeed_ingest_to_send_seconds_count{feed="cam",protocol="http"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestReload: a reload that changes one feed's source keeps its viewers
// connected (they continue at the new source's keyframe) and leaves the
// other feed alone; an invalid one changes nothing.
func TestReload(t *testing.T) {
	t.Parallel()
	ta := startApp(t, func(c *config.Config) {
		c.Feeds["back"] = &config.Feed{Source: "test", Width: 320, Height: 240}
	})
	ta.waitFrames(t, "cam", 5)
	ta.waitFrames(t, "back", 5)
	viewer, _ := httpGet(t, ta.url("/cam/stream.h264"), 20*time.Second)
	backBefore := ta.feeds["back"].Status()

	bad := *ta.cfg
	bad.Users = []auth.User{{Name: "x", Password: "not-a-hash", Permissions: []string{"read"}}}
	if err := ta.Reload(&bad); err == nil {
		t.Fatal("an invalid user was accepted")
	}

	next := *ta.cfg
	next.Feeds = map[string]*config.Feed{"cam": {Source: "test", Width: 176, Height: 144}, "back": ta.cfg.Feeds["back"]}
	if err := ta.Reload(&next); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	sizes := map[string]bool{}
	_ = readUntil(viewer.Body, &rec, func() bool {
		for _, au := range rec.units() {
			for _, n := range au.NALUs {
				if info, err := parseSPS(n); err == nil {
					sizes[info] = true
				}
			}
		}
		return sizes["176x144"]
	})
	if !sizes["176x144"] {
		t.Errorf("viewer did not get the new source's picture: sizes %v", sizes)
	}
	if st := ta.feeds["back"].Status(); st.Restarts != backBefore.Restarts || st.StateSince != backBefore.StateSince {
		t.Errorf("unchanged feed was touched: %+v", st)
	}
	if h, _ := ta.Hub("cam"); h.Stats().ViewersTotal != 1 {
		t.Error("viewer dropped by the reload")
	}
}
