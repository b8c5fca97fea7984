package webrtc

import (
	"context"
	"testing"
	"time"

	"github.com/pion/interceptor"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
	"github.com/camfeed/camfeed/internal/viewer"
)

// testServer assembles camfeed on loopback: the test pattern, a hub, the
// WebRTC output and the viewer.
func testServer(t *testing.T, cfg testsrc.Config, setup func(*Server)) (string, *Server, *testfeed.Feed) {
	t.Helper()
	feed := testfeed.Start(t, cfg, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(feeds), testsupport.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := testsupport.Serve(t, s.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC}}).Register)
	return base, s, feed
}

func TestBrowserWebRTC(t *testing.T) {
	b := browsertest.Launch(t)
	base, _, _ := testServer(t, testsrc.Config{}, nil)

	page := b.NewPage(t, base+"/cam/?proto=webrtc&measure=1", 1280, 720)
	pl := browsertest.Watch(t, page, "WebRTC", 30)
	if pl.After.Width != 640 || pl.After.Height != 480 {
		t.Errorf("video is %dx%d, want 640x480", pl.After.Width, pl.After.Height)
	}
	browsertest.Shot(t, page, "viewer-webrtc.png")
	// A second page joins the running stream and shows a picture.
	browsertest.Join(t, b, base+"/cam/?proto=webrtc")
}

// TestBrowserSlowPeer gives one browser a link with half the stream's
// bitrate. The server must notice from RTCP, switch the peer to
// keyframes, and send it only what the link can carry as decodable
// pictures (a readable pixel time code) that keep coming and stay near
// live. The freshness bound is generous (3 s; ~0.3-1 s on a quiet
// machine): a loaded machine delays the browser, not just the server.
func TestBrowserSlowPeer(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	time.Sleep(2500 * time.Millisecond)
	rate := feed.Hub.Stats().Bitrate
	// RTP, SRTP and UDP add about 5% to the elementary stream; the link
	// gets half the stream's bitrate on the wire.
	shaper := &slowLink{rate: rate * 1.05 / 2, limit: 48 << 10}
	feeds := testfeed.Feeds{"cam": feed.Hub}
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(feeds), testsupport.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.linkHook = func(ir *interceptor.Registry) { ir.Add(shaper) }
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := testsupport.Serve(t, s.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC}}).Register)
	t.Logf("stream %.0f kbit/s, link %.0f kbit/s", rate/1000, shaper.rate/1000)

	page := b.NewPage(t, base+"/cam/?proto=webrtc&measure=1", 800, 600)
	if err := page.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 3*testsupport.Patience); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*testsupport.Patience)
	defer cancel()
	var start float64
	if err := page.Eval(ctx, "performance.timeOrigin + performance.now()", &start); err != nil {
		t.Fatal(err)
	}
	var installed bool
	if err := page.Eval(ctx, countPictures, &installed); err != nil {
		t.Fatal(err)
	}
	sawKeyMode := false
	for i := 0; i < 14; i++ {
		time.Sleep(time.Second)
		if s.Stats().KeyframeOnly > 0 {
			sawKeyMode = true
		}
	}
	samples, err := page.Samples(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := page.Playback(ctx)
	var count pictureCount
	if err := page.Eval(ctx, "window.camfeedCount", &count); err != nil {
		t.Fatal(err)
	}
	t.Logf("dropped by the link: %d packets; page %+v", shaper.dropped(), pb)
	t.Logf("pictures presented %d, unreadable (corrupt) %d, time code going back %d", count.Frames, count.Unreadable, count.Back)
	if !sawKeyMode {
		t.Errorf("the server never switched the slow peer to keyframes")
	}
	// After a few seconds to notice, every picture shown must be fresh,
	// and pictures must keep coming.
	late := browsertest.Window(samples, start, 6*time.Second, 14*time.Second)
	lat := browsertest.Latencies(late)
	if len(lat) < 4 {
		t.Fatalf("the slow peer showed %d readable pictures in 8 s, want ≥ 4", len(lat))
	}
	gap := 0.0
	for i := 1; i < len(late); i++ {
		gap = max(gap, late[i].At-late[i-1].At)
	}
	t.Logf("slow peer: %d pictures in 8 s, latency p50 %.0f ms, max %.0f ms, longest gap %.0f ms",
		len(lat), browsertest.Percentile(lat, 50), lat[len(lat)-1], gap)
	if worst := lat[len(lat)-1]; worst > 3000 {
		t.Errorf("the slow peer showed a picture %.0f ms old, want ≤ 3000", worst)
	}
	if gap > 5000 {
		t.Errorf("the slow peer went %.0f ms without a new picture", gap)
	}
}

// countPictures installs a counter of the pictures the page presents:
// how many, how many have no readable pixel time code, and how many show
// a time code older than the one before. A picture decoded without its
// reference shows the wrong blocks, and its time code is then unreadable
// or wrong; a picture with a readable, increasing time code is whole.
const countPictures = `(() => {
	const v = document.querySelector("video");
	window.camfeedCount = {frames: 0, unreadable: 0, back: 0, last: 0};
	const cb = () => {
		const c = window.camfeedCount, tc = camfeedTimeCode.fromVideo(v);
		c.frames++;
		if (tc === null) c.unreadable++;
		else { if (tc < c.last) c.back++; c.last = tc; }
		v.requestVideoFrameCallback(cb);
	};
	v.requestVideoFrameCallback(cb);
	return true;
})()`

type pictureCount struct {
	Frames     int `json:"frames"`
	Unreadable int `json:"unreadable"`
	Back       int `json:"back"`
}

// TestBrowserStallRecovery blocks Chromium's network for 3 s, both ways,
// then lets it recover (issue 9: it stayed ~600 ms behind the live edge
// for the rest of the session). The display latency must be back under
// 200 ms within a second (doubled under -race), in the same session, and
// stay there: the median over the 2nd to 5th second after the recovery.
func TestBrowserStallRecovery(t *testing.T) {
	b := browsertest.Launch(t)
	feed := testfeed.Start(t, testsrc.Config{}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	stall := &stallLink{}
	keys := &keyframes{gen: feed.Gen}
	d := door.Unlimited(feeds)
	s, err := New(Config{Addr: "127.0.0.1:0", Keyframes: keys}, d, testsupport.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.linkHook = func(ir *interceptor.Registry) { ir.Add(stall) }
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := testsupport.Serve(t, s.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC}}).Register)
	page := b.NewPage(t, base+"/cam/?proto=webrtc&measure=1", 800, 600)
	if err := page.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ok bool
	if err := page.Eval(ctx, countPictures, &ok); err != nil {
		t.Fatal(err)
	}
	now := func() float64 {
		var ms float64
		if err := page.Eval(ctx, "performance.timeOrigin + performance.now()", &ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	time.Sleep(4 * time.Second)
	blocked := now()
	stall.blocked.Store(true)
	time.Sleep(3 * time.Second)
	stall.blocked.Store(false)
	back := now()
	time.Sleep(6 * time.Second)
	samples, err := page.Samples(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var count pictureCount
	if err := page.Eval(ctx, "window.camfeedCount", &count); err != nil {
		t.Fatal(err)
	}
	before := browsertest.Latencies(browsertest.Window(samples, blocked, -2*time.Second, 0))
	after := browsertest.Latencies(browsertest.Window(samples, back, 2*time.Second, 5*time.Second))
	live := -1.0
	for _, x := range samples {
		if x.At >= back && x.Latency < 200 {
			live = x.At - back
			break
		}
	}
	t.Logf("Chromium stall of 3 s: before p50 %.0f ms; back under 200 ms %.0f ms after the network recovered; 2–5 s after: p50 %.0f ms, p95 %.0f ms over %d pictures",
		browsertest.Percentile(before, 50), live, browsertest.Percentile(after, 50), browsertest.Percentile(after, 95), len(after))
	t.Logf("pictures presented %d, unreadable %d, time code going back %d; keyframe requests %d", count.Frames, count.Unreadable, count.Back, keys.n.Load())
	if len(after) < 30 {
		t.Fatalf("only %d readable pictures 2–5 s after the recovery", len(after))
	}
	if p50 := browsertest.Percentile(after, 50); p50 >= 200 {
		t.Errorf("display latency p50 %.0f ms 2–5 s after the recovery, want < 200", p50)
	}
	// Before the fix the page was back only after 2.6 s, having given up
	// on the session and connected again.
	if budget := 1000.0 * raceSlowdown; live < 0 || live > budget {
		t.Errorf("back under 200 ms %.0f ms after the recovery, want ≤ %.0f", live, budget)
	}
	if n := d.Totals("cam")[door.WebRTC].Sessions; n != 1 {
		t.Errorf("%d WebRTC sessions: the page had to connect again", n)
	}
}
