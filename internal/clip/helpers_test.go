package clip

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

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
	testfeed.Live(t, s.g, func(nalus [][]byte, now time.Time) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.p.WriteAU(nalus, now, s.h.Publish)
	})
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

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := t.TempDir() + "/clip.mp4"
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// feeds and serve keep the clip tests short.
type feeds = testfeed.Feeds

// serve runs srv's routes on a loopback port.
func serve(t testing.TB, srv *Server) *httptest.Server {
	mux := route.Unguarded()
	srv.Register(mux)
	return testsupport.ServeHandler(t, mux)
}

func needTool(t testing.TB, name string) string { return testsupport.NeedTool(t, name) }

func ffprobe(t testing.TB, path string) testsupport.Probe { return testsupport.FFprobe(t, path) }

func decodes(t testing.TB, path string) { testsupport.Decodes(t, path) }
