package hls_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/hls"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
	"github.com/camfeed/camfeed/internal/viewer"
)

// TestBrowserLLHLS plays the test pattern in headless Chromium over
// LL-HLS, through the viewer's own LL-HLS client on MediaSource.
func TestBrowserLLHLS(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	srv := hls.New(hls.Config{}, feeds, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	base := testsupport.Serve(t, srv.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.HLS}}).Register)

	page := b.NewPage(t, base+"/cam/?proto=hls&measure=1", 1280, 720)
	if err := page.WaitFor(`window.camfeedPlayer && camfeedPlayer.stats.state === "playing"`, 15*time.Second); err != nil {
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
	s, err := page.Samples(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	lat := browsertest.Latencies(s)
	if len(lat) < 30 {
		t.Fatalf("only %d frames with a readable time code", len(lat))
	}
	t.Logf("LL-HLS display latency over %d frames: p50 %.0f ms, p95 %.0f ms", len(lat), browsertest.Percentile(lat, 50), browsertest.Percentile(lat, 95))
	shot := filepath.Join(browsertest.ArtifactDir(), "viewer-hls.png")
	if err := page.Screenshot(ctx, shot); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s; overlay %q", shot, pb1.Overlay)
}
