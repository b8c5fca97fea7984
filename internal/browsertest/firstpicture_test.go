package browsertest_test

import (
	"flag"
	"log/slog"
	"slices"
	"strings"
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
	"github.com/camfeed/camfeed/internal/webrtc"
)

var (
	firstPictureRuns   = flag.Int("firstpicture.runs", 7, "measured page loads per protocol in TestFirstPicture")
	firstPictureProtos = flag.String("firstpicture.protocols", "webrtc,mse", "protocols TestFirstPicture measures")
	firstPictureLog    = flag.Bool("firstpicture.log", false, "TestFirstPicture logs the servers' debug lines")
	firstPicturePage   = flag.String("firstpicture.page", "/cam/", "the viewer page TestFirstPicture opens: /cam/ or /cam/embed")
)

// TestFirstPicture measures the viewer page's first picture: from
// navigation start to the first decoded frame (the first
// requestVideoFrameCallback), on loopback in headless Chromium, over
// WebRTC and over MSE, with when each step of the start happened. The
// test pattern (640x480, 30 fps, 1 s GOP) runs for 2 s first, so a
// keyframe is cached as it is on a server that has been up. One page
// load per protocol is a warm-up and not counted (the browser's first
// tab starts its GPU and network processes). A measurement, not a
// check: CAMFEED_PERF=1 go test -run TestFirstPicture -v ./internal/browsertest/
func TestFirstPicture(t *testing.T) {
	testsupport.Measurement(t)
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	d := door.Unlimited(feeds)
	var log *slog.Logger
	if *firstPictureLog {
		log = testsupport.Logger(t)
	}
	w, err := webrtc.New(webrtc.Config{Addr: "127.0.0.1:0"}, d, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	m := mse.New(d, log)
	v := viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC, viewer.MSE}})
	base := testsupport.Serve(t, w.Register, m.Register, v.Register)
	time.Sleep(2 * time.Second)

	for _, proto := range strings.Split(*firstPictureProtos, ",") {
		var runs []browsertest.Startup
		for i := 0; i <= *firstPictureRuns; i++ {
			st, err := b.FirstPicture(base + *firstPicturePage + "?proto=" + proto)
			if err != nil {
				t.Fatalf("%s: %v", proto, err)
			}
			if i > 0 {
				runs = append(runs, st)
			}
			t.Logf("%s run %d: first frame %.0f ms %v", proto, i, st["firstFrame"], st)
			// The closed tab's renderer and connection go away before
			// the next start is measured.
			time.Sleep(time.Second)
		}
		var first []float64
		for _, r := range runs {
			first = append(first, r["firstFrame"])
		}
		slices.Sort(first)
		t.Logf("%s: navigation start to first frame: median %.0f ms, %.0f–%.0f ms over %d runs\n%s",
			proto, browsertest.Median(first), first[0], first[len(first)-1], len(first), browsertest.StartupTable(runs))
	}
}
