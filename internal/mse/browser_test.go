package mse_test

import (
	"testing"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/mse"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
	"github.com/camfeed/camfeed/internal/viewer"
)

// TestBrowserMSE plays the test pattern in headless Chromium over MSE:
// the video plays at the feed's size, its pictures carry readable pixel
// time codes, and a second page joins the running stream. Display
// latency and join time are logged; they are measured figures
// (docs/PERFORMANCE.md), not checks on a shared machine.
func TestBrowserMSE(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	srv := mse.New(door.Unlimited(feeds), nil)
	base := testsupport.Serve(t, srv.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.MSE}}).Register)

	page := b.NewPage(t, base+"/cam/?proto=mse&measure=1", 1280, 720)
	pl := browsertest.Watch(t, page, "MSE", 30)
	if pl.After.Width != 640 || pl.After.Height != 480 {
		t.Errorf("video is %dx%d, want 640x480", pl.After.Width, pl.After.Height)
	}
	browsertest.Shot(t, page, "viewer-mse.png")

	// A second page joins the running stream and shows a picture.
	browsertest.Join(t, b, base+"/cam/?proto=mse")

	// The feed list shows a live tile per feed; and the feed page fits a
	// phone, its controls showing.
	index := b.NewPage(t, base+"/", 1024, 600)
	if err := index.WaitFor(`(() => { const v = document.querySelector(".tile video"); return v && v.videoWidth === 640 && v.currentTime > 0.5 })()`, 3*testsupport.Patience); err != nil {
		t.Fatal(err)
	}
	browsertest.Shot(t, index, "index.png")
	phone := b.NewPage(t, base+"/cam/?proto=mse", 390, 844)
	if err := phone.WaitFor(`window.camfeedPlayer && camfeedPlayer.stats.fps > 0`, 3*testsupport.Patience); err != nil {
		t.Fatal(err)
	}
	browsertest.Shot(t, phone, "viewer-phone.png")
}
