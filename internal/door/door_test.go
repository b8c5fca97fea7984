package door

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
)

type feeds map[string]*hub.Hub

func (f feeds) Hub(name string) (*hub.Hub, bool) { h, ok := f[name]; return h, ok }

type countRejects struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countRejects) ViewerRejected(limit string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[limit]++
}

func newDoor(t *testing.T, caps limits.Caps) (*Door, *hub.Hub, *bytes.Buffer, *countRejects) {
	t.Helper()
	h := hub.New(hub.Config{Join: hub.JoinNext, LagBudget: 123 * time.Millisecond})
	t.Cleanup(h.Close)
	var buf bytes.Buffer
	met := &countRejects{}
	d := New(feeds{"cam": h}, limits.NewViewers(caps), met, slog.New(slog.NewTextHandler(&buf, nil)))
	return d, h, &buf, met
}

func TestEnterLeave(t *testing.T) {
	d, h, logs, _ := newDoor(t, limits.Caps{})
	s, err := d.Enter(Who{Feed: "cam", Protocol: HTTP, Remote: "192.0.2.1:5000", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sub == nil || h.Stats().Viewers[HTTP] != 1 {
		t.Fatalf("no subscription: %+v", h.Stats().Viewers)
	}
	// The feed's policy, not the output's: JoinNext waits for a keyframe.
	h.Publish(&h264.AccessUnit{Data: []byte{0, 0, 0, 1, 0x41}, NALUs: [][]byte{{0x41}}, Received: time.Now()})
	if _, ok, _ := s.Sub.TryNext(); ok {
		t.Error("a P frame was delivered before any keyframe")
	}
	if got := d.Count("cam"); got[HTTP] != 1 {
		t.Errorf("count %v", got)
	}
	if in := d.Sessions("cam"); len(in) != 1 || in[0].User != "alice" || in[0].Protocol != HTTP {
		t.Errorf("sessions %+v", in)
	}
	s.Leave("viewer closed the connection")
	s.Leave("twice") // only the first counts
	if h.Stats().Viewers[HTTP] != 0 || len(d.Sessions("cam")) != 0 || d.slots.Total() != 0 {
		t.Error("the session did not leave")
	}
	if tot := d.Totals("cam")[HTTP]; tot.Sessions != 1 || tot.Open != 0 {
		t.Errorf("totals %+v", tot)
	}
	out := logs.String()
	if !strings.Contains(out, "viewer joined") || strings.Count(out, "viewer left") != 1 || !strings.Contains(out, `reason="viewer closed the connection"`) {
		t.Errorf("log lines:\n%s", out)
	}
}

func TestAdmitCountsWhatTheOutputSends(t *testing.T) {
	d, _, _, _ := newDoor(t, limits.Caps{})
	s, err := d.Admit(Who{Feed: "cam", Protocol: WebRTC, Remote: "192.0.2.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sub != nil {
		t.Fatal("Admit subscribed")
	}
	s.Sent(100)
	s.Sent(50)
	s.Skipped(2)
	if st := s.Stats(); st != (Stats{Units: 2, Bytes: 150, Skips: 2}) {
		t.Errorf("stats %+v", st)
	}
	s.Leave("peer closed")
	if tot := d.Totals("cam")[WebRTC]; tot.Bytes != 150 || tot.Skips != 2 {
		t.Errorf("totals %+v", tot)
	}
	var none *Session
	none.Sent(1) // a nil session (a shared fan-out) counts nothing, without a crash
	none.Skipped(1)
}

func TestLimits(t *testing.T) {
	d, _, _, met := newDoor(t, limits.Caps{PerFeed: 2, PerIP: 1, Total: 3})
	a, err := d.Enter(Who{Feed: "cam", Protocol: HTTP, Remote: "192.0.2.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Enter(Who{Feed: "cam", Protocol: RTSP, Remote: "192.0.2.1:2"})
	var fe *limits.FullError
	if !errors.As(err, &fe) || fe.Limit != "ip" {
		t.Errorf("second from one address: %v", err)
	}
	b, err := d.Admit(Who{Feed: "cam", Protocol: WebRTC, Remote: "192.0.2.2:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = d.Admit(Who{Feed: "cam", Protocol: HLS, Remote: "192.0.2.3:1"}); !errors.As(err, &fe) || fe.Limit != "feed" {
		t.Errorf("third on the feed: %v", err)
	}
	if _, err := d.Enter(Who{Feed: "nope", Protocol: HTTP}); !errors.Is(err, ErrNoFeed) {
		t.Errorf("unknown feed: %v", err)
	}
	a.Leave("done")
	b.Leave("done")
	if _, err := d.Enter(Who{Feed: "cam", Protocol: MSE, Remote: "192.0.2.1:3"}); err != nil {
		t.Errorf("after leaving: %v", err)
	}
	if met.n["ip"] != 1 || met.n["feed"] != 1 {
		t.Errorf("rejections %v", met.n)
	}
	w := httptest.NewRecorder()
	Refuse(w, err)
	d.Close()
	if _, err := d.Enter(Who{Feed: "cam", Protocol: HTTP}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestRefuse(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{ErrNoFeed, 404}, {ErrClosed, 503}, {&limits.FullError{Limit: "feed", Feed: "cam", Max: 1}, 503},
	} {
		w := httptest.NewRecorder()
		Refuse(w, tc.err)
		if w.Code != tc.code {
			t.Errorf("%v: %d, want %d", tc.err, w.Code, tc.code)
		}
	}
}

// TestLogLinesAreRateLimited: a flood of viewers writes a bounded number
// of lines, and says how many it left out.
func TestLogLinesAreRateLimited(t *testing.T) {
	d, _, logs, _ := newDoor(t, limits.Caps{})
	for range 500 {
		s, err := d.Enter(Who{Feed: "cam", Protocol: TCP, Remote: "192.0.2.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		s.Leave("viewer closed the connection")
	}
	d.Close()
	d.Flush() // writes the summary
	out := logs.String()
	if n := strings.Count(out, "\n"); n > 30 {
		t.Errorf("%d lines for 500 sessions", n)
	}
	if !strings.Contains(out, `msg="viewer left" more=`) || !strings.Contains(out, `msg="viewer joined" more=`) {
		t.Errorf("no summary:\n%s", out)
	}
}

// TestWaitAndShutdownReason: after Close, Wait returns once every session
// has left, and each leaves with ReasonShutdown whatever its output saw.
func TestWaitAndShutdownReason(t *testing.T) {
	d, _, logs, _ := newDoor(t, limits.Caps{})
	a, err := d.Enter(Who{Feed: "cam", Protocol: HTTP, Remote: "192.0.2.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Admit(Who{Feed: "cam", Protocol: HLS, Remote: "192.0.2.2:5000"})
	if err != nil {
		t.Fatal(err)
	}
	a.Leave("viewer closed the connection") // before shutdown: its own reason
	d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := d.Wait(ctx); err == nil || !strings.Contains(err.Error(), "1 viewer(s) still connected") {
		t.Errorf("Wait with a session open: %v", err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- d.Wait(context.Background()) }()
	b.Leave("server stopped")
	if err := <-done; err != nil {
		t.Errorf("Wait: %v", err)
	}
	d.Flush()
	out := logs.String()
	if !strings.Contains(out, `protocol=http remote=192.0.2.1:5000`) || !strings.Contains(out, `reason="viewer closed the connection"`) {
		t.Errorf("the viewer that left before shutdown lost its reason:\n%s", out)
	}
	if !strings.Contains(out, `reason="`+ReasonShutdown+`"`) || strings.Contains(out, "server stopped") {
		t.Errorf("the viewer that left at shutdown is not said to have left because camfeed stopped:\n%s", out)
	}
}
