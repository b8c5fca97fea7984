package mse_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/mse"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
	"github.com/camfeed/camfeed/internal/viewer"
)

// TestBrowserMSE plays the test pattern in headless Chromium over MSE and
// reads the pixel time code back from the page to measure display latency.
func TestBrowserMSE(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	srv := mse.New(feeds, nil)
	base := testsupport.Serve(t, srv.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.MSE}}).Register)

	page := b.NewPage(t, base+"/cam/?proto=mse&measure=1", 1280, 720)
	if err := page.WaitFor(`window.camfeedPlayer && camfeedPlayer.stats.state === "playing"`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pb0, err := page.Playback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	pb1, err := page.Playback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first frame %.0f ms after navigation; %+v", pb0.FirstFrame, pb1)
	if pb1.CurrentTime <= pb0.CurrentTime+2 || pb1.Decoded <= pb0.Decoded+40 {
		t.Errorf("video does not play: time %.2f→%.2f, frames %d→%d", pb0.CurrentTime, pb1.CurrentTime, pb0.Decoded, pb1.Decoded)
	}
	if pb1.Width != 640 || pb1.Height != 480 {
		t.Errorf("video is %dx%d, want 640x480", pb1.Width, pb1.Height)
	}
	s, err := page.Samples(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	lat := browsertest.Latencies(s)
	if len(lat) < 40 {
		t.Fatalf("only %d frames with a readable time code", len(lat))
	}
	p50, p95 := browsertest.Percentile(lat, 50), browsertest.Percentile(lat, 95)
	t.Logf("MSE display latency over %d frames: p50 %.0f ms, p95 %.0f ms", len(lat), p50, p95)
	if p50 >= 500 {
		t.Errorf("MSE p50 display latency %.0f ms, want < 500", p50)
	}
	shot := filepath.Join(browsertest.ArtifactDir(), "viewer-mse.png")
	if err := page.Screenshot(ctx, shot); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s; overlay %q", shot, pb1.Overlay)

	// A second page joins the running stream: a picture within 500 ms of
	// asking for it.
	join := b.NewPage(t, base+"/cam/?proto=mse", 640, 480)
	if err := join.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	pj, err := join.Playback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("joining page: first picture %.0f ms after the player asked, %.0f ms after navigation", pj.JoinMs, pj.FirstFrame)
	if pj.JoinMs > 500 {
		t.Errorf("joining page showed its first picture %.0f ms after asking, want ≤ 500", pj.JoinMs)
	}

	// The feed list shows a live tile per feed; and the feed page fits a
	// phone, its controls showing.
	index := b.NewPage(t, base+"/", 1024, 600)
	if err := index.WaitFor(`(() => { const v = document.querySelector(".tile video"); return v && v.videoWidth === 640 && v.currentTime > 0.5 })()`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := index.Screenshot(ctx, filepath.Join(browsertest.ArtifactDir(), "index.png")); err != nil {
		t.Error(err)
	}
	phone := b.NewPage(t, base+"/cam/?proto=mse", 390, 844)
	if err := phone.WaitFor(`window.camfeedPlayer && camfeedPlayer.stats.fps > 0`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := phone.Screenshot(ctx, filepath.Join(browsertest.ArtifactDir(), "viewer-phone.png")); err != nil {
		t.Error(err)
	}
}
