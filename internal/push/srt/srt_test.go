package srt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/srt/srttest"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// small keeps the I_PCM keyframes of the test pattern at ~115 KB.
var small = testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}

const secret = "correct-horse-battery"

func dialTest(t testing.TB, u *url.URL, params hub.Params, timeout time.Duration) (*Writer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience)
	defer cancel()
	return Dial(ctx, u, params, Options{Timeout: timeout, Log: testsupport.Logger(t)})
}

func TestPushToSRTLiveTransmit(t *testing.T) {
	testsupport.CheckGoroutines(t, "gosrt", "push/srt")
	units, params := testfeed.Pattern(t, small, 75)
	r := srttest.Start(t, "&passphrase="+secret+"&latency=1000")
	w, err := dialTest(t, r.URL("?streamid=publish:cam&passphrase="+secret+"&latency=1000"), params, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	testfeed.Push(t, w, units, 0, small.FPS)
	// Give the receiver its latency (1 s, ample on a busy machine) to
	// deliver the last packets: it drops what it holds when the caller leaves.
	time.Sleep(1500 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r.Wait(t)
	p := testsupport.FFprobe(t, r.Out)
	testsupport.Decodes(t, r.Out)
	if !p.FirstKey {
		t.Error("the first picture received is not a keyframe")
	}
	if p.Width != 320 || p.Height != 240 {
		t.Errorf("size %dx%d, want 320x240", p.Width, p.Height)
	}
	// Every unit was sent over a clean loopback; allow a late tail.
	if p.Frames < len(units)-5 {
		t.Errorf("%d frames decoded of %d sent", p.Frames, len(units))
	}
	// PTS from the caller's clock: the frames span their count at 30 fps
	// (to a frame or two: the format duration counts the last frame's).
	if want := float64(p.Frames) / float64(small.FPS); math.Abs(p.Duration-want) > 2.0/float64(small.FPS) {
		t.Errorf("duration %.3f s for %d frames, want %.3f s", p.Duration, p.Frames, want)
	}
	t.Logf("%d of %d frames, %.2f s", p.Frames, len(units), p.Duration)
}

// Nothing answers: a port where nothing listens (the kernel refuses) or
// a host that is down (a socket that never answers). Every dial says so
// in words and leaves nothing running: gosrt, which strands its socket
// reader after about one failed dial in twenty, is not called (see
// probe). A push target that is down is dialled every 30 s for as long
// as it stays down.
func TestNoAnswer(t *testing.T) {
	testsupport.CheckGoroutines(t, "gosrt", "push/srt")
	_, params := testfeed.Pattern(t, small, 1)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tc := range []struct {
		name, addr, want string
		dials            int
	}{
		{"refused", fmt.Sprintf("127.0.0.1:%d", srttest.FreeUDPPort(t)), ": no answer in 150ms (the port refused: nothing listens there)", 5},
		// Without probe, 20 dials left a goroutine in 2 runs of 3.
		{"silent", silent.LocalAddr().String(), ": no answer in 150ms", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse("srt://" + tc.addr + "?streamid=s3cretid&passphrase=" + secret)
			for range tc.dials {
				_, err := dialTest(t, u, params, 150*time.Millisecond)
				if !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("err = %v, want ErrNoAnswer", err)
				}
				if want := "srt://" + tc.addr + tc.want; err.Error() != want {
					t.Fatalf("err = %q, want %q", err, want)
				}
			}
		})
	}
}

// Dial ends with its context, not its timeout (the framework stopping).
func TestDialCanceled(t *testing.T) {
	_, params := testfeed.Pattern(t, small, 1)
	u, _ := url.Parse(fmt.Sprintf("srt://127.0.0.1:%d", srttest.FreeUDPPort(t)))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Dial(ctx, u, params, Options{Timeout: 3 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	// No goroutine check: gosrt v0.11.0 strands its socket reader after
	// some failed dials (one in ten or so), where no Conn is returned
	// for drainDialer to work on.
	_, params := testfeed.Pattern(t, small, 1)
	for _, tc := range []struct{ name, recv, push, want string }{
		{"wrong", "&passphrase=" + secret, "?passphrase=not-the-secret", "wrong passphrase"},
		{"missing", "&passphrase=" + secret, "", "the server wants a passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srttest.Start(t, tc.recv)
			_, err := dialTest(t, r.URL(tc.push), params, 3*time.Second)
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("err = %q names the passphrase", err)
			}
		})
	}
}

// A receiver that dies mid-stream sends no shutdown. Killed, its port
// answers with ICMP; frozen (stopped, as a host that drops off the
// network would be) nothing answers at all. Either way WriteUnit fails
// within about the timeout, never blocking for good.
func TestReceiverGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*srttest.Receiver)
	}{
		{"killed", (*srttest.Receiver).Kill},
		{"frozen", (*srttest.Receiver).Freeze},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testsupport.CheckGoroutines(t, "gosrt", "push/srt")
			units, params := testfeed.Pattern(t, small, 30)
			r := srttest.Start(t, "")
			w, err := dialTest(t, r.URL(""), params, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			testfeed.Push(t, w, units[:10], 0, small.FPS)
			tc.end(r)
			err = testfeed.PushUntilError(t, w, units, 10, small.FPS)
			if !errors.Is(err, ErrGone) {
				t.Errorf("err = %v, want ErrGone", err)
			}
			t.Logf("after that: %v", err)
		})
	}
}

// gosrt v0.11.0 can strand its socket reader on Close (see drainDialer);
// it showed as one goroutine left in about twenty connections.
func TestReconnectsLeaveNoGoroutines(t *testing.T) {
	testsupport.CheckGoroutines(t, "gosrt", "push/srt")
	_, params := testfeed.Pattern(t, small, 1)
	for range 10 {
		r := srttest.Start(t, "")
		w, err := dialTest(t, r.URL(""), params, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		r.Wait(t)
	}
}

// The framework may Close from another goroutine to stop a push: the
// writes then fail at once, and nothing is left running.
func TestCloseWhileWriting(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/srt")
	units, params := testfeed.Pattern(t, small, 30)
	r := srttest.Start(t, "")
	w, err := dialTest(t, r.URL(""), params, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	testfeed.CloseWhileWriting(t, w, units, small.FPS)
}

// A server that files streams by stream id (as MediaMTX and SRS do) gets
// the id and passphrase of the URL, and its access-control refusal reads
// as such. The server is gosrt's listener, in this process.
func TestStreamID(t *testing.T) {
	units, params := testfeed.Pattern(t, small, 5)
	ln, err := gosrt.Listen("srt", "127.0.0.1:0", gosrt.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		for {
			conn, _, err := ln.Accept(func(req gosrt.ConnRequest) gosrt.ConnType {
				if req.StreamId() != "publish:cam" {
					req.SetRejectionReason(gosrt.REJX_FORBIDDEN)
					return gosrt.REJECT
				}
				if req.SetPassphrase(secret) != nil {
					return gosrt.REJECT
				}
				return gosrt.PUBLISH
			})
			if err != nil {
				return
			}
			buf := make([]byte, 2048)
			n, err := conn.Read(buf)
			if err == nil {
				got <- buf[:n]
			}
			conn.Close()
		}
	}()
	base := "srt://" + ln.Addr().String() + "?passphrase=" + secret
	_, err = dialTest(t, mustURL(t, base+"&streamid=publish:other"), params, 3*time.Second)
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "access denied: check streamid=") || strings.Contains(err.Error(), "other") {
		t.Errorf("err = %v, want a rejection for the stream id, without it", err)
	}
	w, err := dialTest(t, mustURL(t, base+"&streamid=publish:cam"), params, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteUnit(units[0], 0); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if len(b)%188 != 0 || b[0] != 0x47 {
			t.Errorf("the server got %d bytes starting %#x, want TS packets", len(b), b[0])
		}
	case <-time.After(testsupport.Patience):
		t.Fatal("nothing arrived")
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
