package push_test

import (
	"fmt"
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
	const noAnswer = "no answer in 1s (the port refused: nothing listens there)"
	t.Parallel() // waits on backoff timers, not the CPU; no goroutine check
	testsupport.NeedTool(t, "srt-live-transmit")
	port := srttest.FreeUDPPort(t)
	ps := startPush(t, push.Config{Timeout: time.Second}, testLagBase, fmt.Sprintf("srt://127.0.0.1:%d", port))
	testsupport.Eventually(t, "no answer in the status", func() bool {
		return ps.status().LastError == noAnswer
	})
	r := srttest.StartOn(t, port, "")
	ps.waitFrames(t, 60)
	srtStop(ps, r, t)
	checkRecording(t, r.Out)
	if want := fmt.Sprintf("push srt://127.0.0.1:%d: %s", port, noAnswer); !strings.Contains(ps.Log.String(), want) {
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
	t.Parallel() // waits on backoff timers, not the CPU; no goroutine check
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
// (drop-tail queue of 32 KB, like a home router's), the push paces what
// it sends at the rate it sees the receiver acknowledge, cutting it when
// packets are NAKed or queue up (srt.Writer's uplink), so WriteUnit
// waits and the hub skips the push to keyframes: its lag stays under the
// lag budget plus one GOP plus the keyframe on the wire, and what the
// receiver writes decodes cleanly, every gap ending at a keyframe.
//
// The receiver's latency is over four round trips through the full
// queue (SRT's rule), so the resends of what the queue dropped arrive in
// time; it is also longer than Close's wait for the acknowledgements, so
// the test sees a stop keep the receiver's last pictures.
func TestSRTSlowUplink(t *testing.T) {
	const latency = "latency=2500"
	r := srttest.Start(t, "&"+latency)
	const rate = 60 << 10 // the test pattern at 320x240, 1 s GOP: ~120 KB/s
	relay := pushtest.StartRelay(t, fmt.Sprintf("127.0.0.1:%d", r.Port), rate, 32<<10)
	ps := startPush(t, push.Config{Timeout: 10 * time.Second}, testLagBase, "srt://"+relay.Addr+"?"+latency)
	st := watchLag(t, ps, rate, 10*time.Second)
	if st.FramesSkipped == 0 || st.Reconnects != 0 {
		t.Errorf("status %+v: want frames skipped and no reconnect", st)
	}
	t.Logf("the relay dropped %d datagrams; the push's pacing: %s", relay.Dropped(), pacing(ps))
	ps.stop()
	r.Wait(t)
	if n := r.Dropped(t); n > 0 {
		// SRT's own loss: a resend that came too late for the receiver,
		// which no sender can undo (seen only on a starved machine).
		// What the push decided, the lag and the skips, was judged above.
		t.Logf("srt-live-transmit gave up on %d packets that came too late for its latency; the recording is not judged", n)
		return
	}
	if jumps := checkRecording(t, r.Out); jumps == 0 {
		t.Error("the recording has no jump to a keyframe")
	}
}

// TestSRTFastUplink: through the same relay at about four times the
// stream's rate, nothing is lost or queued, so the push is never paced
// and never skips.
func TestSRTFastUplink(t *testing.T) {
	r := srttest.Start(t, "&latency=1000")
	const rate = 512 << 10
	relay := pushtest.StartRelay(t, fmt.Sprintf("127.0.0.1:%d", r.Port), rate, 256<<10)
	ps := startPush(t, push.Config{Timeout: 10 * time.Second}, testLagBase, "srt://"+relay.Addr+"?latency=1000")
	st := watchLag(t, ps, rate, 5*time.Second)
	if st.FramesSkipped != 0 || st.Reconnects != 0 || relay.Dropped() != 0 {
		t.Errorf("status %+v, %d datagrams dropped: want no skip, no reconnect, no drop", st, relay.Dropped())
	}
	if p := pacing(ps); p != "none" {
		t.Errorf("paced on a fast uplink: %s", p)
	}
	time.Sleep(time.Second) // the receiver's latency
	ps.stop()
	r.Wait(t)
	if jumps := checkRecording(t, r.Out); jumps != 0 {
		t.Errorf("the recording has %d jumps to a keyframe, want none", jumps)
	}
}

// pacing sums up the push's "srt: uplink short" log lines: how often it
// cut its rate, and to what.
func pacing(ps *pushing) string {
	var cuts []string
	for line := range strings.Lines(ps.Log.String()) {
		if strings.Contains(line, "srt: uplink short") {
			_, kbps, _ := strings.Cut(line, "rate_kbps=")
			kbps, _, _ = strings.Cut(kbps, " ")
			cuts = append(cuts, kbps)
		}
	}
	if len(cuts) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d cuts, to %s kbit/s", len(cuts), strings.Join(cuts, ", "))
}
