package rtsp

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// displayedAges models a player that honours RTP timestamps: it shows the
// first unit on arrival and every later one at its timestamp's distance
// from the first, or on arrival if that is later. It returns, per unit
// from the test pattern, how old the picture was (against its capture
// time) when shown.
func displayedAges(units []received) []time.Duration {
	var ages []time.Duration
	if len(units) == 0 {
		return nil
	}
	first := units[0]
	for _, u := range units {
		if u.captured.IsZero() {
			continue
		}
		due := first.arrival.Add(time.Duration(int64(int32(u.rtpTime-first.rtpTime)) * int64(time.Second) / clockRate))
		shown := due
		if u.arrival.After(due) {
			shown = u.arrival
		}
		ages = append(ages, shown.Sub(u.captured))
	}
	return ages
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// since returns the units captured at or after t.
func since(units []received, t time.Time) []received {
	var out []received
	for _, u := range units {
		if !u.captured.Before(t) {
			out = append(out, u)
		}
	}
	return out
}

// TestJoinAndLiveEdge joins viewers mid-GOP and checks the two promises
// of instant join: the first picture is a keyframe with SPS/PPS, and the
// age of what a timestamp-honouring player shows is the same for a viewer
// that just joined as for one that joined long before, and stays so. How
// fast the first picture comes (1.5-6 ms on loopback) is measured by
// TestPerf (CAMFEED_PERF=1, docs/perf/rtsp.md); here it is logged. It covers both hub join
// policies that send cached units: instant (the keyframe, then the next
// keyframe or the rest of a fresh GOP) and keyframe (the whole cached
// GOP, which is where compressing catch-up timestamps matters most).
func TestJoinAndLiveEdge(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	for _, join := range []hub.JoinPolicy{hub.JoinInstant, hub.JoinKeyframe} {
		t.Run(join.String(), func(t *testing.T) {
			t.Parallel()
			src := testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}
			h, _ := newFeed(t, src, hub.Config{Join: join})
			waitKeyframe(t, h)
			s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
			// The stream's own GOP: a late viewer replayed without
			// compressed catch-up stays most of a GOP behind the early one.
			gop := time.Duration(src.Intra) * time.Second / time.Duration(src.FPS)

			early := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
			time.Sleep(4 * time.Second)

			var joins []time.Duration
			var late *reader
			for i := range 5 {
				time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond) // anywhere in the GOP
				if i == 4 {
					// The viewer compared below joins late in a GOP, with
					// 20 or more units cached: replayed without compressed
					// timestamps, they would put it 0.6 s or more behind.
					for h.Stats().Units%30 < 20 {
						time.Sleep(5 * time.Millisecond)
					}
				}
				r := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
				first := r.waitUnits(t, 1, testsupport.Patience)[0]
				if !first.key || !hasParams(first.nalus) {
					t.Fatalf("join %d: first unit is not a keyframe with SPS and PPS", i)
				}
				joins = append(joins, first.arrival.Sub(r.playAt))
				if i == 0 {
					checkDecodes(t, first.nalus)
				}
				if i < 4 {
					r.close()
				} else {
					late = r
				}
			}
			joinedAt := time.Now()
			time.Sleep(3 * time.Second)

			t.Logf("%s: PLAY to first keyframe: %v (max %v)", join, joins, slices.Max(joins))

			// Compare the two viewers on the same pictures: those captured
			// after the late viewer had caught up.
			window := joinedAt.Add(500 * time.Millisecond)
			earlyUnits, lateUnits := early.units(), late.units()
			ea := tail(displayedAges(earlyUnits), len(since(earlyUnits, window)))
			la := tail(displayedAges(lateUnits), len(since(lateUnits, window)))
			if len(ea) < 30 || len(la) < 30 {
				t.Fatalf("too few units in the window: early %d, late %d", len(ea), len(la))
			}
			me, ml := median(ea), median(la)
			t.Logf("%s: displayed age, median/p99/max: early viewer %v/%v/%v, late viewer %v/%v/%v", join,
				me, percentile(ea, 0.99), slices.Max(ea), ml, percentile(la, 0.99), slices.Max(la))
			// Both are modelled from wall-clock arrivals, so a busy machine
			// adds noise: the bounds are generous, and still well under the
			// 0.6 s a late viewer would lag with uncompressed catch-up.
			if median(ea) > 2*time.Second || median(la) > 2*time.Second {
				t.Errorf("displayed age median over 2 s")
			}
			if d := (me - ml).Abs(); d > gop/2 {
				t.Errorf("late viewer's displayed age differs from the early one's by %v, half a GOP or more", d)
			}
			// The sender reports map RTP time to the arrival wall clock:
			// a client can measure the picture's age with them.
			for _, u := range since(lateUnits, window) {
				if u.ntp.IsZero() {
					t.Fatal("no NTP time (RTCP sender report) for a live unit")
				}
				if d := u.ntp.Sub(u.captured); d < 0 || d > 2*time.Second {
					t.Errorf("NTP time of a live unit is %v after its capture, want 0..2s", d)
					break
				}
			}
		})
	}
}

func tail[T any](s []T, n int) []T { return s[max(0, len(s)-n):] }

func hasParams(nalus [][]byte) bool {
	var sps, pps bool
	for _, n := range nalus {
		switch n[0] & 0x1f {
		case 7:
			sps = true
		case 8:
			pps = true
		}
	}
	return sps && pps
}

// checkDecodes has ffmpeg decode one access unit on its own.
func checkDecodes(t *testing.T, nalus [][]byte) {
	t.Helper()
	if !testsupport.HaveTool(t, "ffmpeg") {
		return
	}
	var annexB []byte
	for _, n := range nalus {
		annexB = append(annexB, 0, 0, 0, 1)
		annexB = append(annexB, n...)
	}
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "h264", "-i", "-", "-f", "null", "-")
	cmd.Stdin = bytes.NewReader(annexB)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("the first access unit does not decode on its own: %v %s", err, out)
	}
}

// TestJoinReplayOverSlowLink: with join: keyframe, a viewer on a link
// only a little faster than the stream gets the whole replayed GOP, with
// no gap: catch-up units are judged by how long they wait once sent, not
// by how old they were at the join.
func TestJoinReplayOverSlowLink(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	// A lag budget of 1 s, not 0.5: judged by their age at the join, the
	// replayed units (up to 1.5 s old) would still be skipped, but a busy
	// machine that runs the slow reader late does not make a gap.
	h, f := newFeed(t, testsrc.Config{Width: 640, Height: 480, FPS: 30, Intra: 60}, hub.Config{Join: hub.JoinKeyframe, LagBudget: time.Second})
	waitKeyframe(t, h)
	for h.Stats().Units%60 < 45 { // late in the GOP: ~45 units cached
		time.Sleep(5 * time.Millisecond)
	}
	bitrate := h.Stats().Bitrate
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	var sc *slowConn
	r := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP, dial: slowDialer(&sc, 32<<10)})
	sc.rate.Store(int64(bitrate / 8 * 3))
	units := r.waitUnits(t, 60, 3*testsupport.Patience)
	if !units[0].key {
		t.Fatal("the first unit is not a keyframe")
	}
	if n := gaps(t, f, units); n != 0 {
		t.Errorf("%d gaps in the replayed GOP and what followed", n)
	}
}
