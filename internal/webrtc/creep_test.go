package webrtc

import (
	"context"
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

// TestBrowserNoCreep plays WebRTC and MSE side by side for a minute and
// checks that neither drifts away from the live edge: the median display
// latency of the last 10 s is within 500 ms of the first 10 s. Both
// windows share the machine's load, so the comparison holds on a busy
// machine; a player that creeps drifts by seconds a minute.
func TestBrowserNoCreep(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of playback")
	}
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(feeds), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := testsupport.Serve(t, s.Register, mse.New(door.Unlimited(feeds), nil).Register, viewer.New(feeds, viewer.Options{}).Register)

	pages := map[string]*browsertest.Page{
		"webrtc": b.NewPage(t, base+"/cam/?proto=webrtc&measure=1", 640, 480),
		"mse":    b.NewPage(t, base+"/cam/?proto=mse&measure=1", 640, 480),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	starts := map[string]float64{}
	for name, p := range pages {
		if err := p.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 3*testsupport.Patience); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, p := range pages {
		var now float64
		if err := p.Eval(ctx, "performance.timeOrigin + performance.now()", &now); err != nil {
			t.Fatal(err)
		}
		starts[name] = now
	}
	const run = 60 * time.Second
	time.Sleep(run + time.Second)
	for name, p := range pages {
		samples, err := p.Samples(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		first := browsertest.Latencies(browsertest.Window(samples, starts[name], 0, 10*time.Second))
		last := browsertest.Latencies(browsertest.Window(samples, starts[name], run-10*time.Second, run))
		all := browsertest.Latencies(browsertest.Window(samples, starts[name], 0, run))
		if len(first) < 20 || len(last) < 20 {
			t.Errorf("%s: only %d and %d readable frames in the first and last 10 s", name, len(first), len(last))
			continue
		}
		f50, l50 := browsertest.Percentile(first, 50), browsertest.Percentile(last, 50)
		t.Logf("%s over %v: %d frames, p50 %.0f ms, p95 %.0f ms; first 10 s p50 %.0f ms, last 10 s p50 %.0f ms (p95 %.0f → %.0f)",
			name, run, len(all), browsertest.Percentile(all, 50), browsertest.Percentile(all, 95), f50, l50,
			browsertest.Percentile(first, 95), browsertest.Percentile(last, 95))
		if l50 > f50+500 {
			t.Errorf("%s latency crept from %.0f ms to %.0f ms", name, f50, l50)
		}
	}
}
