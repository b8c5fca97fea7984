package push_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/push"
)

// slowProxy forwards TCP connections to target, reading from the client
// at most rate bytes a second, through a small receive buffer: an uplink
// slower than the stream.
func slowProxy(t *testing.T, target string, rate int) string {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy(t, ln, target, func(c, up net.Conn) {
		buf := make([]byte, 2<<10)
		start, sent := time.Now(), 0
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := up.Write(buf[:n]); werr != nil {
					return
				}
				sent += n
				if ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
			if err != nil {
				return
			}
		}
	})
	return ln.Addr().String()
}

// proxy forwards each connection ln accepts to target: the answers as they
// come, the client's bytes through up (which returns when the client's
// side ends). Every goroutine ends before the test does.
func proxy(t *testing.T, ln net.Listener, target string, up func(c, up net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
			wg.Go(func() { up(c, u); u.Close() })
		}
	})
}

// TestRTMPSlowUplink: through an uplink at half the stream's rate, the
// push skips to keyframes: its lag stays under the lag budget plus one
// GOP plus the keyframe being written, and what the server records
// decodes cleanly, every gap ending at a keyframe.
func TestRTMPSlowUplink(t *testing.T) {
	ng := startNginx(t, freePort(t), "")
	ps := slowUplink(t, func(proxy string) string { return "rtmp://" + proxy + "/live/slow" }, fmt.Sprintf("127.0.0.1:%d", ng.Port))
	ps.stop()
	ng.stop()
	if jumps := checkRecording(t, filepath.Join(ng.Dir, "slow.flv")); jumps == 0 {
		t.Error("the recording has no jump to a keyframe")
	}
}

// TestRTSPSlowUplink is TestRTMPSlowUplink for RTSP record into ffmpeg:
// gortsplib's own queue must not hide the backlog from the hub.
func TestRTSPSlowUplink(t *testing.T) {
	port := freePort(t)
	f := startFFmpegRTSP(t, port, "slow.mkv")
	ps := slowUplink(t, func(proxy string) string { return "rtsp://" + proxy + "/x" }, fmt.Sprintf("127.0.0.1:%d", port))
	ps.stop()
	f.finished(t)
	if jumps := checkRecording(t, f.out); jumps == 0 {
		t.Error("the recording has no jump to a keyframe")
	}
}

// slowUplink pushes to url(proxy), where proxy forwards to server at half
// the stream's rate, for 10 s, and checks the push's lag and skips.
func slowUplink(t *testing.T, url func(proxy string) string, server string) *pushing {
	t.Helper()
	const rate = 60 << 10 // the test pattern at 320x240, 1 s GOP: ~120 KB/s
	proxy := slowProxy(t, server, rate)
	ps := startPush(t, push.Config{Timeout: 10 * time.Second, Backoff: 200 * time.Millisecond}, testLagBase, url(proxy))
	ps.waitFrames(t, 1)
	started := ps.status().Reconnects // a server slower to listen than the push is to dial
	st := watchLag(t, ps, rate, 10*time.Second)
	if st.FramesSkipped == 0 || st.Reconnects != started {
		t.Errorf("status %+v: want frames skipped and no reconnect once live", st)
	}
	return ps
}

// watchLag watches a push over an uplink of rate bytes a second for d
// once it is live, and fails the test if its lag goes over the lag
// budget plus one GOP plus the largest keyframe's time on the wire plus
// a second (kernel and relay buffers). It returns the status at the end.
func watchLag(t *testing.T, ps *pushing, rate int, d time.Duration) push.Status {
	t.Helper()
	ps.waitFrames(t, 1)
	var maxLag float64
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		maxLag = max(maxLag, ps.status().Lag)
		time.Sleep(50 * time.Millisecond)
	}
	st := ps.status()
	keyframe := 0
	for _, au := range ps.Feed.Hub.Since(time.Time{}) {
		keyframe = max(keyframe, au.Size())
	}
	onWire := time.Duration(float64(keyframe) / float64(rate) * float64(time.Second))
	bound := testLagBase + testGOP + onWire + time.Second
	t.Logf("max lag %.2f s (bound %v: lag budget %v + GOP %v + keyframe of %d bytes on the wire %v + 1 s), frames %d, skipped %d, reconnects %d",
		maxLag, bound, testLagBase, testGOP, keyframe, onWire.Round(time.Millisecond), st.Frames, st.FramesSkipped, st.Reconnects)
	if time.Duration(maxLag*float64(time.Second)) > bound {
		t.Errorf("max lag %.2f s over %v", maxLag, bound)
	}
	return st
}
