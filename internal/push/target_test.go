package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/pushnet"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// fakeConn is one connection of a fake protocol: what it was sent.
type fakeConn struct {
	params hub.Params
	failAt int // WriteUnit fails at this unit (0: never)
	skipAt int // WriteUnit returns pushnet.ErrSkip at this call (0: never)
	calls  int

	mu    sync.Mutex
	units []*h264.AccessUnit
	pts   []time.Duration
}

func (c *fakeConn) WriteUnit(au *h264.AccessUnit, pts time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAt > 0 && len(c.units) >= c.failAt {
		return errors.New("the server closed the connection")
	}
	c.calls++
	if c.calls == c.skipAt {
		return fmt.Errorf("fake://h:1: %w", pushnet.ErrSkip)
	}
	c.units, c.pts = append(c.units, au), append(c.pts, pts)
	return nil
}

func (c *fakeConn) Close() error { return nil }

func (c *fakeConn) sent() ([]*h264.AccessUnit, []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*h264.AccessUnit(nil), c.units...), append([]time.Duration(nil), c.pts...)
}

// runFake runs p with one push of feed "cam" to fake://h:1/x through
// dial, until the returned stop (which may be called more than once).
func runFake(p *Pushes, dial DialFunc) (stop func()) {
	u, _ := url.Parse("fake://h:1/x")
	p.add("cam", u, "", dial)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// A writer that cannot send a unit (pushnet.ErrSkip) is given nothing
// more until the next keyframe; the units in between count as skipped.
func TestSkipToKeyframe(t *testing.T) {
	f := testfeed.Start(t, testsrc.Config{Width: 160, Height: 120, FPS: 30, Intra: 10}, hub.Config{LagBudget: time.Second})
	c := &fakeConn{skipAt: 3}
	dial := func(context.Context, *url.URL, hub.Params, Options) (Writer, error) { return c, nil }
	p := New(Config{}, door.Unlimited(testfeed.Feeds{"cam": f.Hub}), nil)
	defer runFake(p, dial)()
	testsupport.Eventually(t, "units after the skip", func() bool { u, _ := c.sent(); return len(u) >= 5 })
	units, _ := c.sent()
	// Units 0 and 1 went; unit 2 was refused; the next one sent must be a
	// keyframe, and so the seven units between count as skipped.
	if !units[0].Keyframe || !units[2].Keyframe {
		t.Errorf("keyframes among the units sent: %v, %v, %v: want the first and the one after the skip", units[0].Keyframe, units[1].Keyframe, units[2].Keyframe)
	}
	if st := p.All()[0]; st.FramesSkipped < 8 || st.Reconnects != 0 || st.LastError != "" {
		t.Errorf("status %+v: want the units up to the next keyframe skipped, no reconnect", st)
	}
}

// TestSupervisor drives a target through a refused dial, a connection
// that dies, and a camera that changes mode, with a fake protocol: each
// connection starts at a keyframe whose SPS/PPS it was dialled with, and
// the timestamps never go back across all of them.
func TestSupervisor(t *testing.T) {
	h := hub.New(hub.Config{LagBudget: 500 * time.Millisecond})
	t.Cleanup(h.Close)
	g1, _ := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 10})
	g2, _ := testsrc.New(testsrc.Config{Width: 160, Height: 120, FPS: 30, Intra: 10})
	var mode atomic.Int32
	parser := h264.NewParser(h264.ParserConfig{StampIngest: true})
	testfeed.Live(t, g1, func(nalus [][]byte, now time.Time) {
		if mode.Load() == 1 {
			nalus, _ = g2.Next(now)
		}
		parser.WriteAU(nalus, now, h.Publish)
	})

	var mu sync.Mutex
	var conns []*fakeConn
	dials := 0
	dial := func(ctx context.Context, u *url.URL, p hub.Params, o Options) (Writer, error) {
		mu.Lock()
		defer mu.Unlock()
		dials++
		if dials == 1 {
			return nil, errors.New("fake://h:1: nothing listens there (connection refused)")
		}
		c := &fakeConn{params: p}
		if dials == 2 {
			c.failAt = 20
		}
		conns = append(conns, c)
		return c, nil
	}
	p := New(Config{Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, door.Unlimited(testfeed.Feeds{"cam": h}), nil)
	stop := runFake(p, dial)
	defer stop()

	frames := func(i int) int {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(conns) {
			return 0
		}
		u, _ := conns[i].sent()
		return len(u)
	}
	testsupport.Eventually(t, "a second connection after the first died", func() bool { return frames(1) >= 20 })
	mode.Store(1)
	testsupport.Eventually(t, "a connection with the new SPS", func() bool { return frames(2) >= 20 })
	stop()

	st := p.All()[0]
	if st.State != StateStopped || st.Reconnects < 3 || st.LastError == "" {
		t.Errorf("status %+v: want stopped, 3 reconnects and the last error", st)
	}
	var last time.Duration = -1
	for i, c := range conns {
		units, pts := c.sent()
		if len(units) == 0 {
			continue
		}
		first := units[0]
		if !first.Keyframe || !sameParams(first, c.params) || c.params.SPS == nil {
			t.Errorf("connection %d: first unit keyframe %v, with the dialled SPS/PPS %v", i, first.Keyframe, sameParams(first, c.params))
		}
		for j, d := range pts {
			if d <= last {
				t.Fatalf("connection %d unit %d: pts %v after %v", i, j, d, last)
			}
			last = d
		}
	}
	if len(conns) < 3 || bytes.Equal(conns[0].params.SPS, conns[2].params.SPS) {
		t.Errorf("%d connections; the last one's SPS should be the new mode's", len(conns))
	}
}

// TestBackoff: the wait after a failure doubles up to the maximum, and
// starts again from the first after a connection that stayed up for the
// healthy time.
func TestBackoff(t *testing.T) {
	f := testfeed.Start(t, testsrc.Config{Width: 160, Height: 120, FPS: 30, Intra: 10}, hub.Config{})
	var mu sync.Mutex
	dials := 0
	dial := func(ctx context.Context, u *url.URL, p hub.Params, o Options) (Writer, error) {
		mu.Lock()
		defer mu.Unlock()
		dials++
		if dials == 6 {
			return &fakeConn{params: p, failAt: 15}, nil // live for half a second
		}
		return nil, errors.New("fake://h:1: nothing listens there (connection refused)")
	}
	p := New(Config{Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Healthy: 200 * time.Millisecond},
		door.Unlimited(testfeed.Feeds{"cam": f.Hub}), nil)
	var waits []string
	p.onBackoff = func(d time.Duration) { waits = append(waits, d.String()) } // the target's goroutine only
	u, _ := url.Parse("fake://h:1/x")
	p.add("cam", u, "", dial)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	testsupport.Eventually(t, "eight attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return dials >= 8
	})
	cancel()
	<-done
	want := "10ms 20ms 40ms 40ms 40ms 10ms 20ms"
	if got := strings.Join(waits, " "); !strings.HasPrefix(got, want) {
		t.Errorf("waits %s, want %s...", got, want)
	}
}
