package record

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// feed is the test pattern going into a hub.
type feed struct {
	h   *hub.Hub
	g   *testsrc.Generator
	p   *h264.Parser
	fps int
	rnd *rand.Rand
	mu  sync.Mutex
	t   time.Time // capture time of the next synthetic frame
}

func newFeed(t testing.TB, cfg testsrc.Config) *feed {
	t.Helper()
	g, err := testsrc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &feed{
		h: hub.New(hub.Config{MaxBytes: 256 << 20}), g: g, p: h264.NewParser(h264.ParserConfig{}),
		fps: g.Config().FPS, rnd: rand.New(rand.NewPCG(3, 4)),
	}
}

// publish sends secs of video with synthetic times, as fast as the
// recorder takes it (a few ms of jitter, as from a pipe), starting where
// the last call ended or secs before now.
func (f *feed) publish(secs float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := int(secs * float64(f.fps))
	if f.t.IsZero() {
		f.t = time.Now().Add(-time.Duration(secs * float64(time.Second)))
	}
	for range n {
		nalus, _ := f.g.Next(f.t)
		f.p.WriteAU(nalus, f.t.Add(time.Duration(2000+f.rnd.IntN(4000))*time.Microsecond), f.h.Publish)
		f.t = f.t.Add(time.Second / time.Duration(f.fps))
		time.Sleep(200 * time.Microsecond)
	}
}

// live publishes in real time until the test ends.
func (f *feed) live(t testing.TB) {
	testfeed.Live(t, f.g, func(nalus [][]byte, now time.Time) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.p.WriteAU(nalus, now, f.h.Publish)
	})
}

// running is a recorder started by start.
type running struct {
	*Recorder
	cancel context.CancelFunc
	done   chan error
}

// start runs a recorder and waits until it follows the feed.
func start(t testing.TB, cfg Config, f *feed, setup ...func(*Recorder)) *running {
	t.Helper()
	r := New(cfg, "cam", f.h, nil)
	for _, fn := range setup {
		fn(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{r, cancel, make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop() })
	deadline := time.Now().Add(testsupport.Patience)
	for f.h.Stats().Viewers["record"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("recorder did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return rr
}

// caughtUp waits until the recorder has taken every unit published.
func (rr *running) caughtUp(t testing.TB, f *feed) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := f.h.Stats()
		if st.BytesOut >= st.BytesIn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorder is behind: %d of %d bytes", st.BytesOut, st.BytesIn)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop ends Run and waits for it.
func (rr *running) stop() {
	if rr.cancel != nil {
		rr.cancel()
		<-rr.done
		rr.cancel = nil
	}
}

// dirBytes is the size of every file in dir.
func dirBytes(t testing.TB, dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// files lists dir's file names.
func files(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}
