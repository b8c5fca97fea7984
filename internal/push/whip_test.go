package push_test

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/push/pushtest"
	"github.com/camfeed/camfeed/internal/push/whip/whiptest"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

const whipToken = "s3cret-token-value"

// checkWHIP checks what a WHIP receiver got: the first picture a
// keyframe with SPS and PPS, every gap ending at a keyframe, and ffmpeg
// decoding it with no error. It returns the jumps to a keyframe.
func checkWHIP(t *testing.T, r *whiptest.Receiver) int {
	t.Helper()
	data, _, _ := r.Received()
	units := testfeed.Units(data)
	jumps := testfeed.CheckStream(t, "whip", units)
	if stderr, frames := testsupport.DecodeAnnexB(t, data); stderr != "" || frames < 10 {
		t.Errorf("ffmpeg decoded %d frames of %d: %s", frames, len(units), stderr)
	}
	return jumps
}

// TestWHIPIntoPion pushes to a WHIP server built on pion and checks what
// it received.
func TestWHIPIntoPion(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "pion")
	r := whiptest.Start(t, whipToken)
	ps := startPush(t, push.Config{}, testLagBase, r.URL("?token="+whipToken).String())
	ps.waitFrames(t, 90)
	st := ps.status()
	if st.Bytes == 0 || st.LastError != "" || st.Reconnects != 0 {
		t.Errorf("status %+v: want bytes, no error, no reconnect", st)
	}
	if want := r.URL("").String(); st.Target != want {
		t.Errorf("target %q, want %q (the token taken off)", st.Target, want)
	}
	ps.stop()
	if _, _, deleted := r.Received(); len(deleted) != 1 {
		t.Errorf("DELETEs %q: want the session ended once", deleted)
	}
	checkWHIP(t, r)
	if strings.Contains(ps.Log.String(), whipToken) {
		t.Errorf("the token is in the logs:\n%s", ps.Log)
	}
}

// TestWHIPTargetComesUpLater: the server answers 503 at first; the push
// retries and goes live when it serves.
func TestWHIPTargetComesUpLater(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "pion")
	r := whiptest.Start(t, whipToken)
	r.SetDown(true)
	ps := startPush(t, push.Config{}, testLagBase, r.URL("?token="+whipToken).String())
	const words = "the server refused the offer: HTTP 503 Service Unavailable"
	testsupport.Eventually(t, "the refusal in the status", func() bool { return ps.status().LastError == words })
	r.SetDown(false)
	ps.waitFrames(t, 60)
	ps.stop()
	checkWHIP(t, r)
	if want := "push " + r.URL("").String() + ": " + words; !strings.Contains(ps.Log.String(), want) {
		t.Errorf("no line %q:\n%s", want, ps.Log)
	}
}

// TestWHIPTargetGoneMidStream: the server ends the session while live
// and refuses offers for a while; the push reconnects when it serves
// again, and the new session starts at a keyframe.
func TestWHIPTargetGoneMidStream(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "pion")
	r := whiptest.Start(t, whipToken)
	ps := startPush(t, push.Config{Timeout: 2 * time.Second, Backoff: 200 * time.Millisecond}, testLagBase, r.URL("?token="+whipToken).String())
	ps.waitFrames(t, 60)
	r.SetDown(true)
	r.CloseAll()
	testsupport.Eventually(t, "the push to notice", func() bool { return ps.status().State != push.StateLive })
	r.SetDown(false)
	ps.waitFrames(t, 60)
	st := ps.status()
	if st.Reconnects == 0 || !strings.Contains(ps.Log.String(), "the connection ended: the server closed it") {
		t.Errorf("status %+v: want a reconnect, and the end in words in the log:\n%s", st, ps.Log)
	}
	ps.stop()
	if jumps := checkWHIP(t, r); jumps == 0 {
		t.Error("no jump to a keyframe where the second session starts")
	}
}

// TestWHIPWrongToken: the server refuses the token: a clear error, and a
// slow, growing retry rather than a hot loop.
func TestWHIPWrongToken(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "pion")
	r := whiptest.Start(t, whipToken)
	ps := startPush(t, push.Config{}, testLagBase, r.URL("?token=not-the-token").String())
	// 1 s doubling: attempts at 0, 1, 3, 7 s; a hot loop would make
	// hundreds.
	testsupport.Eventually(t, "three attempts", func() bool { return r.Posts() >= 3 })
	time.Sleep(2 * time.Second)
	if n := r.Posts(); n > 5 {
		t.Errorf("%d attempts in about 5 s: want a growing backoff", n)
	}
	const words = "the server refused the token (HTTP 401)"
	if st := ps.status(); st.LastError != words || st.State == push.StateLive {
		t.Errorf("status %+v: want %q", st, words)
	}
	want := "push " + r.URL("").String() + ": " + words
	if logs := ps.Log.String(); !strings.Contains(logs, want) || strings.Contains(logs, "not-the-token") {
		t.Errorf("logs: want %q and no token:\n%s", want, logs)
	}
}

// viaRelay rewrites a WHIP answer to send the media through a slow UDP
// relay (rate bytes a second, a drop-tail queue of queue bytes) to the
// receiver's first IPv4 candidate; the relays are kept in *relays.
func viaRelay(t *testing.T, rate, queue int, mu *sync.Mutex, relays *[]*pushtest.Relay) func(string) string {
	return func(sdp string) string {
		var out []string
		done := false
		for _, line := range strings.Split(sdp, "\r\n") {
			f := strings.Fields(line)
			if !strings.HasPrefix(line, "a=candidate:") {
				out = append(out, line)
				continue
			}
			if done || len(f) < 6 || net.ParseIP(f[4]).To4() == nil {
				continue
			}
			relay := pushtest.StartRelay(t, net.JoinHostPort(f[4], f[5]), rate, queue)
			mu.Lock()
			*relays = append(*relays, relay)
			mu.Unlock()
			host, port, _ := net.SplitHostPort(relay.Addr)
			f[4], f[5] = host, port
			out = append(out, strings.Join(f, " "))
			done = true
		}
		return strings.Join(out, "\r\n")
	}
}

// TestWHIPSlowUplink: through an uplink at half the stream's rate (a UDP
// relay with a 48 KB drop-tail queue, like a home router's), the push
// learns from the server's NACKs and receiver reports that the link is
// short and sends keyframes only, paced at the rate the link delivers:
// its lag stays under the lag budget plus one GOP plus the keyframe on
// the wire, and once it has switched (the first loss window), every
// picture the server gets has its references and decodes cleanly.
func TestWHIPSlowUplink(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "pion")
	const rate = 60 << 10 // the test pattern at 320x240, 1 s GOP: ~120 KB/s
	var mu sync.Mutex
	var relays []*pushtest.Relay
	r := whiptest.StartWith(t, whiptest.Options{Token: whipToken, Answer: viaRelay(t, rate, 48<<10, &mu, &relays)})
	ps := startPush(t, push.Config{Timeout: 10 * time.Second}, testLagBase, r.URL("?token="+whipToken).String())
	ps.waitFrames(t, 1)
	live := time.Now()
	st := watchLag(t, ps, rate, 15*time.Second)
	ps.stop()
	mu.Lock()
	dropped := 0
	for _, rl := range relays {
		dropped += rl.Dropped()
	}
	mu.Unlock()
	if st.FramesSkipped == 0 || st.Reconnects != 0 {
		t.Errorf("status %+v: want frames skipped and no reconnect", st)
	}
	if !strings.Contains(ps.Log.String(), "mode=keyframes") {
		t.Errorf("the push never switched to keyframes:\n%s", ps.Log)
	}
	// What came before the switch was sent at the full rate and lost
	// packets on the way: check what arrived from 5 s on.
	samples := r.Samples()
	settled := live.Add(5 * time.Second)
	var all, tail []byte
	from := -1
	for i, s := range samples {
		all = append(all, s.Data...)
		// From a keyframe with its SPS (a STAP-A lost on the way leaves
		// one without: it decodes with the earlier ones, not on its own).
		if from < 0 && s.At.After(settled) && bytes.Contains(s.Data, []byte{0, 0, 1, 0x65}) && bytes.Contains(s.Data, []byte{0, 0, 1, 0x67}) {
			from = i
		}
		if from >= 0 {
			tail = append(tail, s.Data...)
		}
	}
	if from < 0 {
		t.Fatalf("no keyframe arrived after the first 5 s (%d pictures in all, %d RTP packets; the relay dropped %d)", len(samples), r.Packets(), dropped)
	}
	units := testfeed.Units(tail)
	jumps := testfeed.CheckStream(t, "whip from 5 s on", units)
	stderr, frames := testsupport.DecodeAnnexB(t, tail)
	if stderr != "" {
		t.Errorf("ffmpeg, from 5 s on: %s", stderr)
	}
	before, _ := testsupport.DecodeAnnexB(t, all) // the overload's first second included: logged, not checked
	t.Logf("relay dropped %d datagrams; %d RTP packets and %d pictures arrived, %d from 5 s on (%d decoded, %d jumps to a keyframe); decoder errors over the whole stream: %d lines",
		dropped, r.Packets(), len(samples), len(units), frames, jumps, strings.Count(before, "\n"))
}
