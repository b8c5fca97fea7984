package rtsp

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

var update = flag.Bool("update", false, "rewrite golden files")

// describe returns the DESCRIBE response of u.
func describe(t *testing.T, u string) (*base.Response, *format.H264, error) {
	t.Helper()
	pu, err := base.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, res, err := c.Describe(pu)
	if err != nil {
		return res, nil, err
	}
	var forma *format.H264
	desc.FindFormat(&forma)
	return res, forma, nil
}

// TestDescribeGolden checks the SDP of a feed against a golden file: it
// must carry sprop-parameter-sets and profile-level-id from the live
// SPS/PPS (RFC 6184 8.1). Run with -update to rewrite it.
func TestDescribeGolden(t *testing.T) {
	annexB, err := os.ReadFile("testdata/keyframe.h264")
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	p := h264.NewParser(h264.ParserConfig{})
	p.Write(annexB, time.Now(), h.Publish)
	p.Flush(time.Now(), h.Publish)
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)

	res, _, err := describe(t, url(s, "cam"))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "describe.sdp")
	if *update {
		if err := os.WriteFile(golden, res.Body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Body, want) {
		t.Errorf("SDP:\n%s\nwant:\n%s", res.Body, want)
	}
	if !bytes.Contains(res.Body, []byte("profile-level-id=42C00D")) || !bytes.Contains(res.Body, []byte("sprop-parameter-sets=")) {
		t.Errorf("SDP lacks the parameter sets:\n%s", res.Body)
	}
}

func TestDescribeErrors(t *testing.T) {
	empty := hub.New(hub.Config{})
	t.Cleanup(empty.Close)
	s, _ := startServer(t, Config{DescribeWait: 100 * time.Millisecond}, newTestFeeds(map[string]*hub.Hub{"cam": empty}), nil, nil)
	for _, tc := range []struct{ path, want string }{
		{"nope", "404"},
		{"cam", "503"},
		{"", "503"}, // the default feed
	} {
		if _, _, err := describe(t, url(s, tc.path)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DESCRIBE /%s: got %v, want %s", tc.path, err, tc.want)
		}
	}
}

// TestParamsChange switches the feed to another picture size, as a camera
// restarting in another mode does. New DESCRIBEs must carry the new
// SPS/PPS, never the old; viewers already playing keep playing, and get
// the new parameter sets in-band with the next keyframe.
func TestParamsChange(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	small := testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 15}
	large := testsrc.Config{Width: 640, Height: 480, FPS: 30, Intra: 15}
	a := startFeeder(t, h, small)
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	spsOf := func(cfg testsrc.Config) []byte {
		g, err := testsrc.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return g.SPS()
	}

	if _, f, err := describe(t, url(s, "cam")); err != nil || !bytes.Equal(f.SPS, spsOf(small)) {
		t.Fatalf("SDP before the change: %v", err)
	}
	r := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
	var ffOut []byte
	ffDone := make(chan error, 1)
	if testsupport.HaveTool(t, "ffmpeg") {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url(s, "cam"),
				"-frames:v", "90", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-")
			var err error
			ffOut, err = cmd.CombinedOutput()
			ffDone <- err
		}()
	} else {
		ffDone <- nil
	}
	time.Sleep(time.Second)

	a.stop()
	changed := time.Now()
	startFeeder(t, h, large)
	waitFor(t, "the new parameters", 3*testsupport.Patience, func() bool { return bytes.Equal(h.Params().SPS, spsOf(large)) })
	if _, f, err := describe(t, url(s, "cam")); err != nil || !bytes.Equal(f.SPS, spsOf(large)) {
		t.Errorf("SDP after the change does not carry the new SPS (%v)", err)
	}
	time.Sleep(time.Second)

	var newKey bool
	var after int
	for _, u := range r.units() {
		if u.arrival.Before(changed) {
			continue
		}
		after++
		for _, n := range u.nalus {
			if h264.TypeOf(n) == h264.NALUTypeSPS && bytes.Equal(n, spsOf(large)) && u.key {
				newKey = true
			}
		}
	}
	if !newKey || after < 20 {
		t.Errorf("the playing viewer got %d units after the change, new SPS in-band: %v", after, newKey)
	}
	if err := <-ffDone; err != nil || len(bytes.TrimSpace(ffOut)) != 0 {
		t.Errorf("ffmpeg across the change: %v\n%s", err, ffOut)
	}
}

// TestSessions checks what /api/v1/status will list.
func TestSessions(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	tcp := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
	udp := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolUDP})
	tcp.waitUnits(t, 10, 3*testsupport.Patience)
	udp.waitUnits(t, 10, 3*testsupport.Patience)
	got := s.Sessions("cam")
	if len(got) != 2 {
		t.Fatalf("sessions: %+v", got)
	}
	transports := map[string]bool{}
	for _, in := range got {
		transports[in.Transport] = true
		if in.Bytes == 0 || in.Action != ActionRead || in.Remote == "" || in.Since.IsZero() {
			t.Errorf("session: %+v", in)
		}
	}
	if !transports[TransportTCP] || !transports[TransportUDP] {
		t.Errorf("transports: %v", transports)
	}
	if len(s.Sessions("other")) != 0 {
		t.Error("sessions of another feed")
	}
	tcp.close()
	udp.close()
	waitFor(t, "no sessions", 3*testsupport.Patience, func() bool { return len(s.Sessions("cam")) == 0 })
}

// TestPauseResume: PAUSE stops a viewer; PLAY starts it again at a
// keyframe.
func TestPauseResume(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	r := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
	r.waitUnits(t, 10, 3*testsupport.Patience)
	if _, err := r.c.Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the viewer to stop", 3*testsupport.Patience, func() bool { return h.Stats().Viewers["rtsp"] == 0 })
	n := len(r.units())
	time.Sleep(300 * time.Millisecond)
	if got := len(r.units()); got > n {
		t.Errorf("%d units arrived while paused", got-n)
	}
	if _, err := r.c.Play(nil); err != nil {
		t.Fatal(err)
	}
	units := r.waitUnits(t, n+10, 3*testsupport.Patience)
	if !units[n].key {
		t.Error("the first unit after PLAY is not a keyframe")
	}
}

// TestFeedReplaced: when the app gives a feed a new hub (a reload), the
// old hub's sessions end and new ones get the new hub.
func TestFeedReplaced(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h1, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h1)
	feeds := newTestFeeds(map[string]*hub.Hub{"cam": h1})
	s, _ := startServer(t, Config{}, feeds, nil, nil)
	old := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
	old.waitUnits(t, 5, 3*testsupport.Patience)

	h2, _ := newFeed(t, testsrc.Config{Width: 640, Height: 480, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h2)
	feeds.mu.Lock()
	feeds.hubs["cam"] = h2
	feeds.mu.Unlock()
	if _, f, err := describe(t, url(s, "cam")); err != nil || !bytes.Equal(f.SPS, h2.Params().SPS) {
		t.Fatalf("DESCRIBE after the hub changed: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- old.c.Wait() }()
	select {
	case <-done:
	case <-time.After(testsupport.Patience):
		t.Error("the old hub's session is still open")
	}
	waitFor(t, "the old hub's viewer to leave", 3*testsupport.Patience, func() bool { return h1.Stats().Viewers["rtsp"] == 0 })
}
