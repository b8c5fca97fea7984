package viewer_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/mse"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
	"github.com/camfeed/camfeed/internal/viewer"
)

// TestBrowserOverlay checks the overlay's text in Chromium (issue 14):
// no frame rate before a window of frames exists ("0 fps" while
// connecting), and no latency below zero, first through the functions
// that make the text, then on a page playing the test pattern over MSE,
// read every 20 ms from its start until it shows a rate.
func TestBrowserOverlay(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	srv := mse.New(door.Unlimited(feeds), nil)
	base := testsupport.Serve(t, srv.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.MSE}}).Register)

	page := b.NewPage(t, base+"/cam/?proto=mse", 640, 480)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testsupport.Patience)
	defer cancel()

	// The text for given stats.
	for _, c := range []struct{ stats, want string }{
		{`{protocol: "MSE", width: 0, height: 0, fps: null, bitrate: null, latency: null, latencyKind: ""}`, "MSE\nlatency …"},
		{`{protocol: "WebRTC", width: 640, height: 480, fps: null, bitrate: null, latency: null, latencyKind: ""}`, "WebRTC · 640×480\nlatency …"},
		{`{protocol: "WebRTC", width: 640, height: 480, fps: 29.6, bitrate: 2104000, latency: 12.4, latencyKind: "camera→screen"}`, "WebRTC · 640×480 · 30 fps · 2.10 Mbit/s\ncamera→screen 12 ms"},
		{`{protocol: "MSE", width: 640, height: 480, fps: 0, bitrate: 0, latency: -0.4, latencyKind: "server→screen"}`, "MSE · 640×480 · 0 fps · 0 kbit/s\nserver→screen 0 ms"},
	} {
		var got string
		if err := page.Eval(ctx, "camfeedPage.overlayText("+c.stats+")", &got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("overlayText(%s) = %q, want %q", c.stats, got, c.want)
		}
	}
	// Which latency readings are kept: below zero within the clock's
	// error (half the best /time round trip, plus 2 ms) is zero; further
	// below is dropped.
	for _, c := range []struct {
		lat, rtt string
		want     *float64
	}{
		{"12.5", "1", ptr(12.5)},
		{"0", "1", ptr(0)},
		{"-2.4", "1", ptr(0)},
		{"-2.6", "1", nil},
		{"-6", "10", ptr(0)},
		{"-8", "10", nil},
		{"-1", "Infinity", ptr(0)},
	} {
		var got *float64
		if err := page.Eval(ctx, "CamfeedPlayer.reading("+c.lat+", "+c.rtt+")", &got); err != nil {
			t.Fatal(err)
		}
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("reading(%s, rtt %s) = %v, want %v", c.lat, c.rtt, show(got), show(c.want))
		}
	}

	// The live overlay, from the page's start to its first rate.
	bad := regexp.MustCompile(`(^|[^0-9.])0 fps|-[0-9]+ ms`)
	seen := map[string]bool{}
	deadline := time.Now().Add(3 * testsupport.Patience)
	for {
		var text string
		if err := page.Eval(ctx, `document.getElementById("overlay").textContent`, &text); err != nil {
			t.Fatal(err)
		}
		if !seen[text] {
			seen[text] = true
			t.Logf("overlay: %q", text)
			if bad.MatchString(text) {
				t.Errorf("the overlay shows %q", text)
			}
		}
		if regexp.MustCompile(`[1-9][0-9]* fps`).MatchString(text) && regexp.MustCompile(`→screen [0-9]+ ms`).MatchString(text) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the overlay never showed a rate and a latency; it showed %v", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ptr(f float64) *float64 { return &f }

func show(f *float64) any {
	if f == nil {
		return "null"
	}
	return *f
}
