package hls_test

import (
	"testing"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hls"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
	"github.com/camfeed/camfeed/internal/viewer"
)

// TestBrowserLLHLS plays the test pattern in headless Chromium over
// LL-HLS, through the viewer's own LL-HLS client on MediaSource. Its
// display latency is logged (docs/PERFORMANCE.md has the figures).
func TestBrowserLLHLS(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	srv := hls.New(hls.Config{}, door.Unlimited(feeds), nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	base := testsupport.Serve(t, srv.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.HLS}}).Register)

	page := b.NewPage(t, base+"/cam/?proto=hls&measure=1", 1280, 720)
	pl := browsertest.Watch(t, page, "LL-HLS", 30)
	if pl.After.Width != 640 || pl.After.Height != 480 {
		t.Errorf("video is %dx%d, want 640x480", pl.After.Width, pl.After.Height)
	}
	browsertest.Shot(t, page, "viewer-hls.png")
}
