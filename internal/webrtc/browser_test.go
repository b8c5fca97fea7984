package webrtc

import (
	"context"
	"github.com/pion/interceptor"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/browsertest"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/viewer"
)

// testServer assembles camfeed on loopback: the test pattern, a hub, the
// WebRTC output and the viewer.
func testServer(t *testing.T, cfg testsrc.Config, setup func(*Server)) (string, *Server, *browsertest.Feed) {
	t.Helper()
	feed := browsertest.StartFeed(t, cfg, hub.Config{})
	feeds := browsertest.Feeds{"cam": feed.Hub}
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(feeds), testLog(t))
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
	base := browsertest.Serve(t, s.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC}}).Register)
	return base, s, feed
}

func TestBrowserWebRTC(t *testing.T) {
	b := browsertest.Launch(t)
	base, _, _ := testServer(t, testsrc.Config{}, nil)

	page := b.NewPage(t, base+"/cam/?proto=webrtc&measure=1", 1280, 720)
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
	s, err := page.Samples(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	lat := browsertest.Latencies(s)
	if len(lat) < 40 {
		t.Fatalf("only %d frames with a readable time code", len(lat))
	}
	p50, p95 := browsertest.Percentile(lat, 50), browsertest.Percentile(lat, 95)
	t.Logf("WebRTC display latency over %d frames: p50 %.0f ms, p95 %.0f ms", len(lat), p50, p95)
	if p50 >= 250 {
		t.Errorf("WebRTC p50 display latency %.0f ms, want < 250", p50)
	}
	shot := filepath.Join(browsertest.ArtifactDir(), "viewer-webrtc.png")
	if err := page.Screenshot(ctx, shot); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s; overlay %q", shot, pb1.Overlay)

	// A second page joins the running stream: a picture within 500 ms.
	join := b.NewPage(t, base+"/cam/?proto=webrtc", 640, 480)
	if err := join.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	pj, err := join.Playback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The page's own load is the browser's business (and slow when the
	// machine is busy); the stream's start is camfeed's: from the player
	// asking for the stream to the first picture on screen.
	t.Logf("joining page: first picture %.0f ms after the player asked, %.0f ms after navigation", pj.JoinMs, pj.FirstFrame)
	if budget := 500.0 * raceSlowdown; pj.JoinMs > budget {
		t.Errorf("joining page showed its first picture %.0f ms after asking, want ≤ %.0f", pj.JoinMs, budget)
	}
}

func testLog(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	// Peers log as they leave, from their own goroutines, possibly after
	// the test is over; testing panics on a Log then.
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// TestBrowserSlowPeer gives one browser a link with half the stream's
// bitrate. The server must notice from RTCP and send it only what the
// link can carry as decodable, fresh pictures: within 1 s of live.
func TestBrowserSlowPeer(t *testing.T) {
	b := browsertest.Launch(t)
	feed := browsertest.StartFeed(t, testsrc.Config{}, hub.Config{})
	time.Sleep(2500 * time.Millisecond)
	rate := feed.Hub.Stats().Bitrate
	// RTP, SRTP and UDP add about 5% to the elementary stream; the link
	// gets half the stream's bitrate on the wire.
	shaper := &slowLink{rate: rate * 1.05 / 2, limit: 48 << 10}
	feeds := browsertest.Feeds{"cam": feed.Hub}
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(feeds), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s.linkHook = func(ir *interceptor.Registry) { ir.Add(shaper) }
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := browsertest.Serve(t, s.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC}}).Register)
	t.Logf("stream %.0f kbit/s, link %.0f kbit/s", rate/1000, shaper.rate/1000)

	page := b.NewPage(t, base+"/cam/?proto=webrtc&measure=1", 800, 600)
	if err := page.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
	if worst := lat[len(lat)-1]; worst > 1000 {
		t.Errorf("the slow peer showed a picture %.0f ms old, want ≤ 1000", worst)
	}
	if gap > 2500 {
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
	feed := browsertest.StartFeed(t, testsrc.Config{}, hub.Config{})
	feeds := browsertest.Feeds{"cam": feed.Hub}
	stall := &stallLink{}
	keys := &keyframes{gen: feed.Gen}
	d := door.Unlimited(feeds)
	s, err := New(Config{Addr: "127.0.0.1:0", Keyframes: keys}, d, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s.linkHook = func(ir *interceptor.Registry) { ir.Add(stall) }
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := browsertest.Serve(t, s.Register, viewer.New(feeds, viewer.Options{Protocols: []string{viewer.WebRTC}}).Register)
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
