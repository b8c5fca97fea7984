package srt

import (
	"time"
)

// gosrt v0.11.0 has no congestion control of its own: it sends each
// packet as soon as it is written (pktSndPeriod is computed, never used)
// and resends every packet NAKed, at once. Through a router's drop-tail
// queue in front of an uplink slower than the stream, that overflows the
// queue, the resends overflow it again, the receiver's TSBPD gives up on
// packets that come too late, and pictures break; and since the writer
// never waits, the hub never learns that the push is behind.
//
// uplink is the congestion control the Writer does instead, as a pure
// core (times come from the caller, no I/O): a token bucket paces what
// goes into gosrt at an estimated uplink rate, and the rate follows
// gosrt's statistics, AIMD-style:
//
//   - Until the receiver reports a loss, nothing is paced: a fast link
//     costs a comparison per datagram and a statistics read every
//     sampleEvery.
//   - On new losses (packets NAKed: a burst, at least burstLoss of those
//     sent in a sample, or lossShare of those sent in the samples of
//     the last lossWindow sampling periods),
//     or when what is unacknowledged spans more than queueLimit over the
//     least seen (a router's queue filling: the packets wait in it
//     before the receiver can acknowledge them), the rate drops to
//     cutGain of what the receiver acknowledged per second (the uplink's
//     delivery rate while it is the bottleneck).
//     Fresh data then waits until what stands in the queue has drained,
//     so that the resends of what it lost get through in time, and no
//     second cut comes before that.
//   - Without either, while the bucket is what holds the stream back,
//     the rate grows by growth per second, to find a faster uplink again.
//   - Resent packets cross the same uplink: their bytes are taken from
//     the bucket too.
//
// A Writer that waits on the bucket makes WriteUnit slow, which the hub
// sees as lag: it moves the push on to the next keyframe, so what the
// receiver gets stays decodable and the camera and other viewers never
// wait.
const (
	sampleEvery = 100 * time.Millisecond // statistics are read at most this often
	// Packets NAKed count as a loss, a sign of a short uplink, when they
	// come in a burst (minBurstLoss or more, and burstLoss of the packets
	// sent in one sample: a queue overflowing, a policer) or are
	// lossShare of those sent in the samples of the last lossWindow
	// sampling periods (at least minLoss). Losses scattered among many
	// packets (a radio link, 1 % at random) are for the resends to fix,
	// not a rate to cut: TestUplinkRadioLink.
	minBurstLoss = 3
	burstLoss    = 0.2
	minLoss      = 5
	lossShare    = 0.05
	lossWindow   = 10
	queueLimit   = 200 * time.Millisecond // unacknowledged span over the least seen that means a queue
	cutGain      = 0.8
	growth       = 0.25                  // of the rate, per second
	minHold      = time.Second           // at least this between two cuts
	maxDrain     = time.Second           // the longest fresh data waits after a cut, or for resends
	burst        = 20 * time.Millisecond // of the rate: what the bucket holds
	minBurst     = 4 * payloadSize       // bytes
	minRate      = 16 << 10              // bytes/s: below this no keyframe is fresh
	minWait      = 2 * time.Millisecond  // shorter waits are left to accumulate
	ackedWeight  = 0.25                  // of a new delivery sample in the average
)

// linkSample is what gosrt says of the connection at one time, in
// running totals of bytes on the wire (payload and headers).
type linkSample struct {
	at      time.Time
	acked   uint64        // bytes the receiver acknowledged
	resent  uint64        // bytes resent
	lost    uint64        // packets the receiver reported lost (NAKs, counted per request)
	rtt     time.Duration // smoothed round trip, 0 when unknown
	pending uint64        // bytes sent, not yet acknowledged
	span    time.Duration // from the oldest unacknowledged packet's sending to the newest's
	sent    uint64        // packets sent, fresh ones
}

// uplink paces and estimates one connection's uplink. The Writer's one
// goroutine calls it: no lock.
type uplink struct {
	rate     float64 // bytes/s; 0: not paced
	tokens   float64 // bytes; may go negative by what is owed
	tokensAt time.Time
	limited  bool // the bucket held a datagram back since the last sample

	start time.Time // of the first sample
	last  linkSample
	// delivered is what the receiver acknowledged, in bytes/s, a moving
	// average (0 until known). It errs low (a push paced under the link
	// acknowledges less than the link carries), which is the safe side:
	// the most acknowledged over half a second in the last two was tried
	// instead, and the bursts of ACKs after a resend made it overshoot
	// (a first cut to 860 kbit/s on a 490 kbit/s link, pictures broken).
	delivered float64
	minSpan   time.Duration // -1 until known
	holdUntil time.Time

	cuts int // for the log and tests

	// The packets NAKed and sent in each of the last lossWindow samples,
	// and when each was taken: samples come only while units are written,
	// none while the push skips to a keyframe, so the window is judged
	// by time (lossWindow sampling periods), not by count.
	naks, sents [lossWindow]uint64
	sampledAt   [lossWindow]time.Time
	window      int // the next slot
}

// take accounts n bytes about to go at now, and returns how long to wait
// before sending them (0: send now). Waits under minWait are carried
// into the next datagram's, so a paced stream wakes every few ms, not
// every datagram.
func (u *uplink) take(now time.Time, n int) time.Duration {
	if u.rate == 0 {
		return 0
	}
	u.refill(now)
	u.tokens -= float64(n)
	if u.tokens >= 0 {
		return 0
	}
	u.limited = true
	wait := time.Duration(-u.tokens / u.rate * float64(time.Second))
	if wait < minWait {
		return 0
	}
	return wait
}

// owed is how long to wait at now before the bucket is out of debt.
func (u *uplink) owed(now time.Time) time.Duration {
	if u.rate == 0 {
		return 0
	}
	u.refill(now)
	if u.tokens >= 0 {
		return 0
	}
	u.limited = true
	return time.Duration(-u.tokens / u.rate * float64(time.Second))
}

func (u *uplink) refill(now time.Time) {
	if d := now.Sub(u.tokensAt); d > 0 {
		u.tokens = min(u.tokens+d.Seconds()*u.rate, max(u.rate*burst.Seconds(), minBurst))
		u.tokensAt = now
	}
}

// due reports whether a new sample is wanted at now.
func (u *uplink) due(now time.Time) bool { return now.Sub(u.last.at) >= sampleEvery }

// observe takes a sample of gosrt's statistics and adjusts the rate. It
// reports whether the rate was cut.
func (u *uplink) observe(s linkSample) (cut bool) {
	prev := u.last
	u.last = s
	if prev.at.IsZero() {
		u.start, u.minSpan = s.at, -1
	}
	if s.pending > 0 && (u.minSpan < 0 || s.span < u.minSpan) {
		u.minSpan = s.span
	}
	if prev.at.IsZero() {
		return false
	}
	dt := s.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return false
	}
	if s.acked >= prev.acked {
		r := float64(s.acked-prev.acked) / dt
		if u.delivered == 0 {
			u.delivered = r
		}
		u.delivered += (r - u.delivered) * ackedWeight
	}
	if u.rate > 0 && s.resent > prev.resent {
		// Owed, up to maxDrain: a storm of resends must not stall the
		// push for longer than the queue they crossed.
		u.refill(s.at)
		u.tokens = max(u.tokens-float64(s.resent-prev.resent), -u.rate*maxDrain.Seconds())
	}
	limited := u.limited
	u.limited = false
	lost := u.lossy(s.at, s.lost-min(s.lost, prev.lost), s.sent-min(s.sent, prev.sent))
	queued := u.minSpan >= 0 && s.span > u.minSpan+queueLimit
	switch {
	case (lost || queued) && !s.at.Before(u.holdUntil):
		base := u.delivered
		if base == 0 || (u.rate > 0 && u.rate < base) {
			base = u.rate
		}
		if base == 0 {
			// Nothing acknowledged yet: half of what was sent since.
			base = float64(s.acked+s.pending) / 2 / max(s.at.Sub(u.start).Seconds(), sampleEvery.Seconds())
		}
		u.rate = max(base*cutGain, minRate)
		// What the path holds beyond its usual span is standing in a
		// queue: fresh data waits for it to drain (at most maxDrain).
		queue := float64(s.pending) - u.rate*max(u.minSpan, 0).Seconds()
		u.tokens, u.tokensAt = -min(max(queue, 0), u.rate*maxDrain.Seconds()), s.at
		// The losses and the queue that made this cut are still reported
		// for a round trip or two after it.
		u.holdUntil = s.at.Add(max(minHold, 2*s.rtt))
		u.cuts++
		return true
	case lost || queued:
	case u.rate > 0 && limited:
		u.rate += u.rate * growth * dt
	}
	return false
}

// lossy records one sample's NAKed and sent packets, taken at now, and
// reports whether the losses are those of a short uplink (see
// minBurstLoss and minLoss). Samples older than lossWindow sampling
// periods no longer count: a burst already cut for, seen again in
// samples spread over seconds of skipping, cut the rate again and again
// to its floor.
func (u *uplink) lossy(now time.Time, nak, sent uint64) bool {
	u.naks[u.window], u.sents[u.window], u.sampledAt[u.window] = nak, sent, now
	u.window = (u.window + 1) % lossWindow
	if nak >= minBurstLoss && float64(nak) >= burstLoss*float64(sent) {
		return true
	}
	var naks, sents uint64
	for i := range lossWindow {
		if now.Sub(u.sampledAt[i]) < lossWindow*sampleEvery {
			naks += u.naks[i]
			sents += u.sents[i]
		}
	}
	return naks >= minLoss && float64(naks) >= lossShare*float64(sents)
}
