package raw

import (
	"context"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// TestFanoutSlowViewers: viewers that keep up are written to by the
// feed's fan-out, and one that stops reading leaves it without holding up
// anyone: the others keep getting every unit, the slow one, once it reads
// again, resumes at a keyframe (its skips counted by the door), and one
// that never reads again is dropped after the write timeout. When the
// last viewer leaves, the fan-out stops.
func TestFanoutSlowViewers(t *testing.T) {
	testsupport.CheckGoroutines(t, "camfeed/internal/raw")
	_, feeds := startFeed(t)
	d := door.New(feeds, limits.NewViewers(limits.Caps{}), nil, quiet())
	// A listener on which a viewer that stopped reading is dropped after
	// a second, and one on which it has ten.
	quick := &Listener{Door: d, Feed: "cam", Log: quiet(), WriteTimeout: time.Second}
	patient := &Listener{Door: d, Feed: "cam", Log: quiet()}
	dialQuick, stopQuick := serveListener(t, quick, 4096)
	dialPatient, stopPatient := serveListener(t, patient, 4096)
	skips := func(c net.Conn) uint64 {
		for _, s := range d.Sessions("cam") {
			if s.Remote == c.LocalAddr().String() {
				return s.Skips
			}
		}
		return 0
	}

	steady, slow, stuck := dialPatient(), dialPatient(), dialQuick()
	readUnits(t, slow, 2)
	readUnits(t, stuck, 2)
	// slow and stuck stop reading; steady goes on and gets 2 s of video.
	testfeed.CheckStream(t, "steady viewer", testfeed.Units(readUnits(t, steady, 60)))
	testsupport.Eventually(t, "the viewer that never reads again is dropped after the write timeout", func() bool {
		return d.Count("cam")[door.TCP] == 2
	})
	// slow reads again: what it gets holds together, and resumed at a
	// keyframe (readUnits starts in the middle of what the socket held, so
	// the check starts at the first keyframe after it).
	units := testfeed.Units(readUnits(t, slow, 90))
	for len(units) > 0 && !units[0].Keyframe {
		units = units[1:]
	}
	testfeed.CheckStream(t, "slow viewer after it read again", units)
	if n := skips(slow); n == 0 {
		t.Error("the slow viewer skipped nothing, by the door's count")
	}
	testfeed.CheckStream(t, "steady viewer at the end", testfeed.Units(readUnits(t, steady, 30)))

	// Hang up first: a write blocked on a viewer that does not read
	// would hold Serve up to the write timeout.
	slow.Close()
	steady.Close()
	stopQuick()
	stopPatient()
	for _, l := range []*Listener{quick, patient} {
		if n := l.fanouts.Running(); n != 0 {
			t.Errorf("%d fan-outs still running after every viewer left", n)
		}
	}
}

// serveListener serves l on a loopback port until stop, and dials
// viewers, closed at the end of the test. With rcvbuf, their receive
// buffer is that small, so that a viewer that stops reading fills its
// socket within a few frames of the small test pattern.
func serveListener(t *testing.T, l *Listener, rcvbuf int) (dial func() net.Conn, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, ln, "tcp") }()
	var dialer net.Dialer
	if rcvbuf > 0 {
		dialer.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	dial = func() net.Conn {
		c, err := dialer.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(4 * testsupport.Patience))
		return c
	}
	stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testsupport.Patience):
			t.Fatal("Serve did not return after its context ended")
		}
	}
	return dial, stop
}

// TestFanoutHTTPWaitingForKeyframe: an HTTP viewer that joins mid-GOP
// with the "next" policy waits for the keyframe in the fan-out; the write
// deadline set for the response head must not be left to cut it off.
func TestFanoutHTTPWaitingForKeyframe(t *testing.T) {
	testsupport.CheckGoroutines(t, "camfeed/internal/raw")
	join := hub.JoinNext
	f := testfeed.Start(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{Join: join})
	h := &HTTP{Door: door.Unlimited(testfeed.Feeds{"cam": f.Hub}), DefaultFeed: "cam", Log: quiet(), WriteTimeout: time.Second}
	base := testsupport.Serve(t, h.Register)
	client := &http.Client{Timeout: 3 * testsupport.Patience}
	resp, err := client.Get(base + "/stream.h264")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Three seconds of video: past the head's deadline of a second.
	testfeed.CheckStream(t, "viewer", testfeed.Units(readUnits(t, resp.Body, 90)))
}

// TestShutdownWithStalledViewer: a viewer whose client stopped reading,
// its write blocked, does not hold up the listener's end for the write
// timeout (ten minutes here): Serve returns once its context ends.
func TestShutdownWithStalledViewer(t *testing.T) {
	testsupport.CheckGoroutines(t, "camfeed/internal/raw")
	_, feeds := startFeed(t)
	d := door.New(feeds, limits.NewViewers(limits.Caps{}), nil, quiet())
	l := &Listener{Door: d, Feed: "cam", Log: quiet(), WriteTimeout: 10 * time.Minute}
	dial, stop := serveListener(t, l, 4<<10)
	c := dial()
	readUnits(t, c, 1)
	// Read no more: a second of the stream fills the client's small
	// buffer and what the kernel keeps unsent, and the write blocks.
	time.Sleep(time.Second)
	stop() // fails the test unless Serve returns within testsupport.Patience
	testsupport.Eventually(t, "the stalled viewer leaves the door", func() bool { return d.Count("cam")[door.TCP] == 0 })
}
