package srt

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// linkSim feeds an uplink the samples gosrt would give for a link that
// acknowledges rate bytes a second with a round trip of rtt, on a fake
// clock.
type linkSim struct {
	u     uplink
	now   time.Time
	acked uint64
	lost  uint64
	sent  uint64 // bytes resent
	pkts  uint64 // packets sent
	span  time.Duration
}

func newLinkSim() *linkSim {
	s := &linkSim{now: time.Unix(1000, 0), span: 20 * time.Millisecond}
	s.sample(0)
	return s
}

// sample moves the clock on by one sampling period, during which the
// link acknowledged rate bytes a second, and hands the uplink a sample.
func (s *linkSim) sample(rate float64) bool {
	s.now = s.now.Add(sampleEvery)
	s.acked += uint64(rate * sampleEvery.Seconds())
	s.pkts += uint64(rate * sampleEvery.Seconds() / payloadSize)
	return s.u.observe(linkSample{at: s.now, acked: s.acked, resent: s.sent, lost: s.lost, sent: s.pkts, rtt: 20 * time.Millisecond, pending: 4000, span: s.span})
}

func near(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance*want }

// TestUplinkUnpacedUntilLoss: a link that loses nothing is never paced.
func TestUplinkUnpacedUntilLoss(t *testing.T) {
	s := newLinkSim()
	for range 50 {
		s.sample(500e3)
		for range 100 {
			if d := s.u.take(s.now, payloadSize); d != 0 {
				t.Fatalf("waited %v on a clean link", d)
			}
		}
	}
	if s.u.rate != 0 || s.u.cuts != 0 {
		t.Errorf("rate %v, %d cuts: want no pacing", s.u.rate, s.u.cuts)
	}
}

// cutOnLoss is a link at 60 kB/s for two seconds, then 10 packets lost
// in one sample: the first cut.
func cutOnLoss(t *testing.T) *linkSim {
	t.Helper()
	s := newLinkSim()
	for range 20 {
		s.sample(60e3)
	}
	s.lost += 10
	if !s.sample(60e3) {
		t.Fatal("no cut on 10 packets lost")
	}
	return s
}

// TestUplinkCutsOnLoss: NAKed packets cut the rate to a share of what
// the receiver acknowledged, once per hold, and the bucket then paces
// at that rate.
func TestUplinkCutsOnLoss(t *testing.T) {
	s := cutOnLoss(t)
	if !near(s.u.rate, cutGain*60e3, 0.05) {
		t.Errorf("rate %.0f B/s, want about %.0f", s.u.rate, cutGain*60e3)
	}
	rate := s.u.rate
	// More losses reported within the hold (the same overflow, NAKed
	// again) do not cut again.
	s.lost += 10
	if s.sample(60e3) || s.u.rate != rate {
		t.Errorf("a second cut within %v: rate %.0f", minHold, s.u.rate)
	}
	// A second's worth of datagrams at that rate waits about a second.
	start, waited := s.now, time.Duration(0)
	s.u.tokensAt = start
	for sent := 0.0; sent < rate; sent += payloadSize + wireOverhead {
		if d := s.u.take(start.Add(waited), payloadSize+wireOverhead); d > 0 {
			waited += d
		}
	}
	if want := time.Second; waited < want*8/10 || waited > want*12/10 {
		t.Errorf("a second of data at the rate waited %v, want about %v", waited, want)
	}
}

// TestUplinkLossyLink: a few losses among many packets (a radio link)
// are left to the resends, not taken for a short uplink.
func TestUplinkLossyLink(t *testing.T) {
	s := newLinkSim()
	for range 50 {
		s.lost += 2
		if s.sample(2e6) {
			t.Fatalf("cut on 2 of %d packets lost", int(2e6*sampleEvery.Seconds()/payloadSize))
		}
	}
}

// TestUplinkOldLossesExpire: a burst of losses cuts once. While the push
// then skips to keyframes it writes, and so samples, only now and then;
// those sparse samples without a new loss must not find the old burst
// still in the window and cut again, down to the floor.
func TestUplinkOldLossesExpire(t *testing.T) {
	s := cutOnLoss(t)
	rate := s.u.rate
	for range 10 {
		s.now = s.now.Add(400 * time.Millisecond) // a sample every half second
		if s.sample(60e3) {
			t.Fatalf("cut again to %.0f B/s (from %.0f) with no new loss, %d cuts", s.u.rate, rate, s.u.cuts)
		}
	}
}

// TestUplinkCutsOnQueue: a growing unacknowledged span (a queue filling)
// cuts before any loss, and fresh data waits for the queue to drain.
func TestUplinkCutsOnQueue(t *testing.T) {
	s := newLinkSim()
	for range 10 {
		s.sample(60e3)
	}
	s.span = 20*time.Millisecond + queueLimit + 50*time.Millisecond
	if !s.sample(60e3) {
		t.Fatal("no cut on a queue")
	}
	if d := s.u.owed(s.now); d <= 0 {
		t.Errorf("owed %v after a cut: want a wait for the queue to drain", d)
	}
}

// TestUplinkGrows: without loss, while the bucket holds the stream back,
// the rate grows by about growth a second; when it does not, it stays.
func TestUplinkGrows(t *testing.T) {
	s := newLinkSim()
	s.lost += 10
	s.sample(60e3)
	for range 10 {
		s.sample(60e3)
	}
	rate := s.u.rate
	for range 10 {
		s.sample(60e3) // nothing held back
	}
	if s.u.rate != rate {
		t.Errorf("rate %.0f grew from %.0f with nothing held back", s.u.rate, rate)
	}
	for range 10 {
		s.u.tokens = -1 // the bucket held a datagram back
		s.u.limited = true
		s.sample(60e3)
	}
	if want := rate * math.Pow(1+growth*sampleEvery.Seconds(), 10); !near(s.u.rate, want, 0.01) {
		t.Errorf("rate %.0f after a second held back, want about %.0f", s.u.rate, want)
	}
}

// TestUplinkResendsCount: resent bytes come out of the bucket.
func TestUplinkResendsCount(t *testing.T) {
	s := newLinkSim()
	s.lost += 10
	s.sample(60e3)
	s.u.tokens = 0
	s.sent += 30000
	s.sample(60e3)
	// On the fake clock: the wait owed is what the resent bytes take at
	// the paced rate (less what the bucket held).
	if d := s.u.owed(s.now); d.Seconds()*s.u.rate < 30000/2 {
		t.Errorf("owed %v after 30 KB resent at %.0f B/s", d, s.u.rate)
	}
	// A storm of resends is owed for maxDrain at most.
	s.sent += 10 << 20
	s.sample(60e3)
	if d := s.u.owed(s.now); d > maxDrain {
		t.Errorf("owed %v after 10 MB resent, want at most %v", d, maxDrain)
	}
}

// TestUplinkFloor: the rate never goes under minRate.
func TestUplinkFloor(t *testing.T) {
	s := newLinkSim()
	for range 30 {
		s.lost += 10
		s.sample(1000)
		s.now = s.now.Add(minHold)
	}
	if s.u.rate < minRate {
		t.Errorf("rate %.0f under the floor %d", s.u.rate, minRate)
	}
}

// BenchmarkUplinkTake is the pacing's cost per datagram once paced.
func BenchmarkUplinkTake(b *testing.B) {
	u := uplink{rate: 1e9}
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for i := range b.N {
		u.take(now.Add(time.Duration(i)*time.Microsecond), payloadSize)
	}
}

// simLink runs the uplink against a simulated drop-tail link of rate
// bytes a second with a queue of queue bytes, fed by a 30 fps stream with
// a keyframe a second (key and p bytes), for d of fake time in steps of
// a millisecond. Like the hub, it skips to the next keyframe a unit
// older than half a second. It returns the datagrams the queue dropped
// after the first settle, those sent, the bytes the link delivered, and
// the uplink.
func simLink(t *testing.T, rate, queue float64, key, p int, d, settle time.Duration) (dropped, sent int, delivered float64, u *uplink) {
	t.Helper()
	return simLossyLink(t, rate, queue, 0, key, p, d, settle)
}

// simLossyLink is simLink on a link that also loses a share of the
// datagrams at random (a radio link), whatever its queue holds.
func simLossyLink(t *testing.T, rate, queue, loss float64, key, p int, d, settle time.Duration) (dropped, sent int, delivered float64, u *uplink) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	type datagram struct {
		size float64
		at   time.Time
	}
	u = &uplink{}
	start := time.Unix(1000, 0)
	var (
		q          []datagram
		queued     float64
		credit     float64 // bytes the link can still send in this step
		acked      float64
		lost       uint64
		pkts       uint64
		nextSend   time.Time
		unit       int     // the unit being sent, by frame number
		left       float64 // its bytes not yet sent
		waitKey    bool
		frame      = time.Second / 30
		wire       = float64(payloadSize + wireOverhead)
		delivered0 float64
	)
	for now := start; now.Sub(start) < d; now = now.Add(time.Millisecond) {
		elapsed := now.Sub(start)
		if elapsed == settle {
			delivered0 = acked
		}
		// The link.
		credit += rate / 1000
		for len(q) > 0 && credit >= q[0].size {
			credit -= q[0].size
			queued -= q[0].size
			acked += q[0].size
			q = q[1:]
		}
		if len(q) == 0 {
			credit = min(credit, wire)
		}
		// The statistics, every sampleEvery.
		if u.due(now) {
			span := time.Duration(0)
			if len(q) > 0 {
				span = now.Sub(q[0].at) + 2*time.Millisecond
			}
			u.observe(linkSample{at: now, acked: uint64(acked), lost: lost, sent: pkts, rtt: 2*time.Millisecond + span, pending: uint64(queued), span: span})
		}
		// The sender: the next unit, as the hub would give it.
		newest := int(elapsed / frame)
		if left <= 0 {
			unit++
			if unit > newest {
				unit = newest // at the live edge: wait for it
				continue
			}
			if newest-unit > int(500*time.Millisecond/frame) || waitKey {
				// Lagging: on to the next keyframe.
				next := (unit/30 + 1) * 30
				if unit%30 == 0 {
					next = unit
				}
				if next > newest {
					waitKey, unit = true, newest
					continue
				}
				waitKey, unit = false, next
			}
			left = float64(p)
			if unit%30 == 0 {
				left = float64(key)
			}
		}
		for left > 0 && !now.Before(nextSend) {
			size := min(left, payloadSize) + wireOverhead
			if w := u.take(now, int(size)); w > 0 {
				nextSend = now.Add(w)
			}
			left -= size - wireOverhead
			pkts++
			if elapsed >= settle {
				sent++
			}
			if queued+size > queue || rnd.Float64() < loss {
				lost++
				if elapsed >= settle {
					dropped++
				}
				continue
			}
			q = append(q, datagram{size, now})
			queued += size
		}
	}
	return dropped, sent, (acked - delivered0) / (d - settle).Seconds(), u
}

// TestUplinkSimulated: on a link at half the stream's rate with a
// router's drop-tail queue, the uplink settles to pacing under the link,
// so the queue drops (almost) nothing while the link stays busy (a run:
// 10 cuts in 30 s, nothing dropped after the first 5 s, 86 % of the link
// used); on a
// link four times the stream, it never paces.
func TestUplinkSimulated(t *testing.T) {
	const key, p = 21000, 3300 // the test pattern at 320x240: ~120 KB/s
	dropped, sent, delivered, u := simLink(t, 60<<10, 32<<10, key, p, 30*time.Second, 5*time.Second)
	t.Logf("slow link: %d cuts, rate %.0f B/s, %d of %d datagrams dropped after 5 s, %.0f B/s delivered", u.cuts, u.rate, dropped, sent, delivered)
	// The rate saws around the link's: cut under it, grown past it.
	if u.rate < 0.3*(60<<10) || u.rate > 1.5*(60<<10) {
		t.Errorf("rate %.0f B/s on a link of %d", u.rate, 60<<10)
	}
	if dropped > sent/100 {
		t.Errorf("%d of %d datagrams dropped once settled", dropped, sent)
	}
	if delivered < 0.4*(60<<10) {
		t.Errorf("the link carried %.0f B/s of %d", delivered, 60<<10)
	}
	dropped, _, _, u = simLink(t, 480<<10, 256<<10, key, p, 10*time.Second, time.Second)
	if u.rate != 0 || u.cuts != 0 || dropped != 0 {
		t.Errorf("fast link: rate %.0f, %d cuts, %d dropped: want no pacing", u.rate, u.cuts, dropped)
	}
}

// TestUplinkRadioLink: a fast link that loses 1 % of the datagrams at
// random (Wi-Fi, a mobile uplink) is for SRT's resends, not a short
// uplink: a 2 Mbit/s stream over it is not paced.
func TestUplinkRadioLink(t *testing.T) {
	const key, p = 60000, 7000 // ~2 Mbit/s at 30 fps, a keyframe a second
	_, sent, _, u := simLossyLink(t, 2<<20, 256<<10, 0.01, key, p, 120*time.Second, time.Second)
	t.Logf("1%% random loss: %d cuts in 120 s, %d datagrams sent", u.cuts, sent)
	if u.cuts > 0 {
		t.Errorf("%d cuts in 120 s on a fast link with 1 %% random loss: want none", u.cuts)
	}
}
