package clip

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// feeds is a fake Feeds.
type feeds map[string]*hub.Hub

func (f feeds) Hub(name string) (*hub.Hub, bool) { h, ok := f[name]; return h, ok }
func (f feeds) Names() []string {
	var n []string
	for k := range f {
		n = append(n, k)
	}
	return n
}

// source feeds the test pattern into a hub, either as history with
// synthetic times (fill) or live (run).
type source struct {
	h   *hub.Hub
	g   *testsrc.Generator
	p   *h264.Parser
	fps int
	rnd *rand.Rand
	mu  sync.Mutex
}

func newSource(t testing.TB, fps, intra int) *source {
	t.Helper()
	g, err := testsrc.New(testsrc.Config{FPS: fps, Intra: intra})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{MaxBytes: 256 << 20, Window: 35 * time.Second})
	return &source{h: h, g: g, p: h264.NewParser(h264.ParserConfig{}), fps: fps, rnd: rand.New(rand.NewPCG(1, 2))}
}

// fill publishes secs of history that ends now, received a few ms after
// capture with jitter, as from a camera pipe.
func (s *source) fill(secs float64) {
	n := int(secs * float64(s.fps))
	end := time.Now()
	for i := n; i > 0; i-- {
		capt := end.Add(-time.Duration(i) * time.Second / time.Duration(s.fps))
		s.publish(capt)
	}
}

// publish sends the frame captured at capt, received 2 to 6 ms later.
func (s *source) publish(capt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recv := capt.Add(2*time.Millisecond + time.Duration(s.rnd.IntN(4000))*time.Microsecond)
	nalus, _ := s.g.Next(capt)
	s.p.WriteAU(nalus, recv, s.h.Publish)
}

// run publishes live until the test ends, each unit received at the
// moment it is published: for measuring delivery to viewers.
func (s *source) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = s.g.Run(ctx, 0, func(nalus [][]byte, _ bool, capt time.Time) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.p.WriteAU(nalus, time.Now(), s.h.Publish)
			return nil
		})
	}()
}

// runSteady publishes live until the test ends, with Received times on
// the frame grid (plus a few ms of jitter) even when the test machine is
// too busy to publish on time, as a camera stamps its frames: the clips'
// timelines are then exact, and only their waiting is live.
func (s *source) runSteady(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		period := time.Second / time.Duration(s.fps)
		due := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			timer.Reset(time.Until(due))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			s.publish(due)
			due = due.Add(period)
		}
	}()
}

// serve runs srv's routes on a loopback port.
func serve(t testing.TB, srv *Server) *httptest.Server {
	mux := route.Unguarded()
	srv.Register(mux)
	ts := httptest.NewUnstartedServer(mux)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// probe is what ffprobe says of an MP4.
type probe struct {
	Duration  float64 // format duration
	Frames    int     // frames decoded and shown
	FirstKey  bool    // the first packet is a keyframe
	Width     int
	Height    int
	Packets   int
	Discarded int // packets decoded but not shown (edit list)
}

func ffprobe(t testing.TB, path string) probe {
	t.Helper()
	bin := needTool(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-print_format", "json", "-count_frames",
		"-show_format", "-show_streams", "-show_packets", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var v struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Width, Height int
			NbReadFrames  string `json:"nb_read_frames"`
		} `json:"streams"`
		Packets []struct {
			Flags string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	var p probe
	p.Duration, _ = strconv.ParseFloat(v.Format.Duration, 64)
	if len(v.Streams) != 1 {
		t.Fatalf("ffprobe: %d streams", len(v.Streams))
	}
	p.Frames, _ = strconv.Atoi(v.Streams[0].NbReadFrames)
	p.Width, p.Height = v.Streams[0].Width, v.Streams[0].Height
	p.Packets = len(v.Packets)
	p.FirstKey = len(v.Packets) > 0 && v.Packets[0].Flags[0] == 'K'
	for _, pk := range v.Packets {
		if len(pk.Flags) > 1 && pk.Flags[1] == 'D' {
			p.Discarded++
		}
	}
	return p
}

// decodes checks that ffmpeg decodes path without a single error.
func decodes(t testing.TB, path string) {
	t.Helper()
	bin := needTool(t, "ffmpeg")
	out, err := exec.Command(bin, "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("ffmpeg decode of %s: %v\n%s", path, err, out)
	}
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := t.TempDir() + "/clip.mp4"
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
