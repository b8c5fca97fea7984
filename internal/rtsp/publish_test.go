package rtsp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// testPublishers takes one publisher per feed, as the app does for feeds
// whose source is "publish": access units go through the parser into the
// feed's hub.
type testPublishers struct {
	mu     sync.Mutex
	hubs   map[string]*hub.Hub
	busy   map[string]bool
	claims int
}

func (p *testPublishers) Publish(feed string) (source.Sink, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hubs[feed]
	if !ok {
		return nil, nil, ErrNotPublishable
	}
	if p.busy[feed] {
		return nil, nil, ErrBusy
	}
	p.busy[feed] = true
	p.claims++
	var once sync.Once
	return &parserSink{h: h, p: h264.NewParser(h264.ParserConfig{})}, func() {
		once.Do(func() {
			p.mu.Lock()
			p.busy[feed] = false
			p.mu.Unlock()
		})
	}, nil
}

func (p *testPublishers) isBusy(feed string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy[feed]
}

type parserSink struct {
	mu sync.Mutex
	h  *hub.Hub
	p  *h264.Parser
}

func (s *parserSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Write(b, time.Now(), s.h.Publish)
	return len(b), nil
}

func (s *parserSink) Idle() {}

func (s *parserSink) WriteAU(nalus [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.WriteAU(nalus, time.Now(), s.h.Publish)
}

// writeTestFile writes seconds of the test pattern as an Annex-B file.
func writeTestFile(t *testing.T, cfg testsrc.Config, seconds int) string {
	t.Helper()
	g, err := testsrc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	start := time.Now()
	for i := range seconds * cfg.FPS {
		nalus, _ := g.Next(start.Add(time.Duration(i) * time.Second / time.Duration(cfg.FPS)))
		b = testsrc.AppendAnnexB(b, nalus)
	}
	p := filepath.Join(t.TempDir(), "in.h264")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPublishFFmpeg publishes with ffmpeg (ANNOUNCE/RECORD, -c copy) and
// reads the feed back; a second publisher is refused with a clear status;
// a publisher killed mid-stream leaves the feed to the next.
func TestPublishFFmpeg(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	pubs := &testPublishers{hubs: map[string]*hub.Hub{"pub": h}, busy: map[string]bool{}}
	s, lg := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"pub": h}), pubs, nil)
	file := writeTestFile(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, 5)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first publisher loops until told to stop: on a busy machine the
	// checks below can take longer than the file.
	first := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-framerate", "30", "-f", "h264", "-i", file,
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url(s, "pub"))
	var firstOut strings.Builder
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Wait() }()
	waitKeyframe(t, h)

	out, err := testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-re", "-framerate", "30", "-f", "h264", "-i", file,
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url(s, "pub"))
	t.Logf("second publisher: %v: %s", err, strings.TrimSpace(out))
	if err == nil || !strings.Contains(out, "503") {
		t.Errorf("a second publisher was not refused with 503: %v %s", err, out)
	}
	if !strings.Contains(lg.String(), "refused a second publisher") {
		t.Error("no log line for the refused publisher")
	}

	if got := s.Sessions("pub"); len(got) != 1 || got[0].Action != ActionPublish || got[0].Transport != TransportTCP {
		t.Errorf("sessions while publishing: %+v", got)
	}
	out, err = testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url(s, "pub"),
		"-frames:v", "30", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("reading the published feed: %v\n%s", err, out)
	}
	_ = first.Process.Signal(os.Interrupt) // ffmpeg ends its RTSP session (TEARDOWN) and exits
	select {
	case <-firstDone:
	case <-time.After(testsupport.Patience):
		t.Fatal("the first publisher did not stop when interrupted")
	}
	if out := strings.TrimSpace(firstOut.String()); out != "" {
		t.Errorf("publisher: %s", out)
	}
	waitFor(t, "the publisher's release", 3*testsupport.Patience, func() bool { return !pubs.isBusy("pub") })

	// A publisher killed in the middle of its stream (SIGKILL: no
	// TEARDOWN, most likely mid-picture) leaves the feed to the next one.
	for i := range 2 {
		pub := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-framerate", "30", "-f", "h264", "-i", file,
			"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url(s, "pub"))
		if err := pub.Start(); err != nil {
			t.Fatal(err)
		}
		before := h.Stats().Units
		waitFor(t, "frames from the publisher", 3*testsupport.Patience, func() bool { return h.Stats().Units > before+20 })
		if i == 1 {
			out, err := testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url(s, "pub"),
				"-frames:v", "30", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-")
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("reading after a killed publisher: %v\n%s", err, out)
			}
		}
		_ = pub.Process.Kill()
		_ = pub.Wait()
		waitFor(t, "the killed publisher's release", 3*testsupport.Patience, func() bool { return !pubs.isBusy("pub") })
	}
}

// goPublisher publishes with gortsplib, packet by packet, so a test can
// stop it anywhere.
type goPublisher struct {
	c     *gortsplib.Client
	media *description.Media
	enc   *rtph264.Encoder
	g     *testsrc.Generator
	ts    uint32
}

func startGoPublisher(t *testing.T, u string, f format.Format) (*goPublisher, error) {
	t.Helper()
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
	proto := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Protocol: &proto}
	if err := c.StartRecording(u, &description.Session{Medias: []*description.Media{medi}}); err != nil {
		return nil, err
	}
	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 10})
	if err != nil {
		t.Fatal(err)
	}
	// Small packets, so that every picture is fragmented (FU-A).
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 500}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	return &goPublisher{c: c, media: medi, enc: enc, g: g}, nil
}

// send sends n access units; with half, only the first half of the last
// one's packets.
func (p *goPublisher) send(t *testing.T, n int, half bool) {
	t.Helper()
	for i := range n {
		nalus, _ := p.g.Next(time.Now())
		pkts, err := p.enc.Encode(nalus)
		if err != nil {
			t.Fatal(err)
		}
		if half && i == n-1 {
			pkts = pkts[:len(pkts)/2]
		}
		for _, pkt := range pkts {
			pkt.Timestamp = p.ts
			if err := p.c.WritePacketRTP(p.media, pkt); err != nil {
				t.Fatal(err)
			}
		}
		p.ts += 3000
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPublishDisconnectMidFrame has a publisher hang up halfway through a
// picture: nothing of that picture may reach the feed, the feed must be
// free for the next publisher, and viewers must then get clean video.
func TestPublishDisconnectMidFrame(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	pubs := &testPublishers{hubs: map[string]*hub.Hub{"pub": h}, busy: map[string]bool{}}
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"pub": h}), pubs, nil)
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}

	p, err := startGoPublisher(t, url(s, "pub"), forma)
	if err != nil {
		t.Fatal(err)
	}
	p.send(t, 25, true) // 24 whole pictures, then half of one
	waitFor(t, "24 units in the hub", 3*testsupport.Patience, func() bool { return h.Stats().Units >= 24 })
	p.c.Close()
	waitFor(t, "the publisher's release", 3*testsupport.Patience, func() bool { return !pubs.isBusy("pub") })
	if n := h.Stats().Units; n != 24 {
		t.Fatalf("the hub has %d units, want the 24 whole ones", n)
	}

	p2, err := startGoPublisher(t, url(s, "pub"), forma)
	if err != nil {
		t.Fatalf("a new publisher after one that hung up: %v", err)
	}
	defer p2.c.Close()
	r := startReader(t, url(s, "pub"), readerOpts{protocol: gortsplib.ProtocolTCP})
	p2.send(t, 30, false)
	units := r.waitUnits(t, 20, 3*testsupport.Patience)
	if !units[0].key {
		t.Error("the viewer's first unit is not a keyframe")
	}
	if n := h.Stats().Units; n != 24+30 {
		t.Errorf("the hub has %d units, want 54", n)
	}
	if pubs.claims != 2 {
		t.Errorf("%d claims, want 2", pubs.claims)
	}
}

// TestPublishNotH264 refuses a publisher of another codec with 415.
func TestPublishNotH264(t *testing.T) {
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	pubs := &testPublishers{hubs: map[string]*hub.Hub{"pub": h}, busy: map[string]bool{}}
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"pub": h, "cam": h}), pubs, nil)
	_, err := startGoPublisher(t, url(s, "pub"), &format.H265{PayloadTyp: 96})
	if err == nil || !strings.Contains(err.Error(), "415") {
		t.Errorf("H.265 publisher: got %v, want 415", err)
	}
	_, err = startGoPublisher(t, url(s, "cam"), &format.H264{PayloadTyp: 96, PacketizationMode: 1})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("publishing to a feed that takes no publisher: got %v, want 403", err)
	}
	if pubs.claims != 0 {
		t.Errorf("%d claims", pubs.claims)
	}
}
