// Package congestion judges a WebRTC sender's link from what its peer
// reports back (RTCP receiver reports and NACKs) and decides, frame by
// frame, whether to send the full stream or keyframes only, paced at the
// rate the link delivers. The WHEP output uses it for its viewers, the
// WHIP push for its uplink.
package congestion

import (
	"sync"
	"time"
)

// A link is judged from what its browser reports back: RTCP
// receiver reports (fraction lost, RFC 3550 §6.4.2) and generic NACKs
// (RFC 4585 §6.2.1). When more than lossLimit of what was sent in a
// window is reported missing, the link cannot carry the stream: the peer
// drops to keyframes only, admitted by a token bucket at the rate the
// link was seen to deliver and paced at that rate, so each keyframe
// arrives whole instead of being cut by the same queue that overflowed.
// Every picture it gets is then decodable and fresh. After a quiet spell
// it probes the full stream again; each failed probe doubles the spell.
const (
	ccWindow       = time.Second
	lossLimit      = 0.10
	minLossPackets = 4
	minRate        = 64e3 // bit/s: below this even keyframes cannot be fresh
	firstProbe     = 15 * time.Second
	maxProbe       = 120 * time.Second
	stableNormal   = 30 * time.Second // a probe that holds this long resets the back-off
	paceGain       = 1.2
)

// Mode is what a link is sent: the full stream, or keyframes only.
type Mode int

// The modes.
const (
	Full Mode = iota
	Keyframes
)

func (m Mode) String() string {
	if m == Keyframes {
		return "keyframes"
	}
	return "full"
}

// Link is one sender's link state. RTCP arrives on one goroutine and
// frames are sent on another, hence the lock.
type Link struct {
	mu sync.Mutex

	mode      Mode
	winStart  time.Time
	sentPkts  int
	sentBytes int
	lostPkts  int     // NACKed in this window
	rrLoss    float64 // newest receiver report's fraction lost
	rrAt      time.Time
	// What the browser got, from successive receiver reports: packets
	// delivered = highest sequence number advance − newly lost. Times
	// the mean packet size, it is the link's delivery rate while the
	// link is the bottleneck.
	rrSeq, rrLost uint32
	rrPrevAt      time.Time
	delivered     float64   // bit/s, moving average; 0 until known
	meanPkt       float64   // bytes
	rate          float64   // bit/s the link delivers, valid in Keyframes
	lastKey       time.Time // when the last keyframe was admitted in keyframe mode
	modeAt        time.Time // when the mode last changed
	afterKey      bool      // the last frame admitted was a keyframe
	tokens        float64   // bits
	tokensAt      time.Time
	lastLoss      time.Time
	fullSince     time.Time
	probe         time.Duration
	probing       bool // back in full mode after keyframes, not yet proven

	keyAge     time.Duration
	quietUntil time.Time // loss reports before this describe a stall

	switches int // to Keyframes, for stats
}

// New starts a link judged able to carry the stream. keyAge is
// how old a keyframe may be when its last packet leaves in keyframe mode.
func New(now time.Time, keyAge time.Duration) *Link {
	return &Link{winStart: now, probe: firstProbe, fullSince: now, keyAge: keyAge}
}

// Recovered tells the estimate that the path was down (no RTCP for
// stallGap) and is back. The NACKs and the receiver report that follow
// describe the stall, when every packet was lost whatever the link's
// rate, so they are not counted for a window.
func (c *Link) Recovered(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.winStart, c.sentPkts, c.sentBytes, c.lostPkts, c.rrLoss = now, 0, 0, 0, 0
	c.quietUntil = now.Add(ccWindow)
	c.rrPrevAt = time.Time{} // the next report starts a new delivery measure
}

// Sent records a frame written to the link.
func (c *Link) Sent(pkts, bytes int) {
	c.mu.Lock()
	c.sentPkts += pkts
	c.sentBytes += bytes
	if pkts > 0 {
		m := float64(bytes) / float64(pkts)
		if c.meanPkt == 0 {
			c.meanPkt = m
		}
		c.meanPkt += (m - c.meanPkt) / 16
	}
	c.mu.Unlock()
}

// Nacked records packets the browser reported missing.
func (c *Link) Nacked(n int) {
	c.mu.Lock()
	if time.Now().Before(c.quietUntil) {
		n = 0
	}
	c.lostPkts += n
	c.mu.Unlock()
}

// ReceiverReport records a report block: fraction lost (0..255 of 256),
// cumulative packets lost and the extended highest sequence number.
func (c *Link) ReceiverReport(fractionLost uint8, totalLost, highestSeq uint32, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rrLoss, c.rrAt = float64(fractionLost)/256, now
	if now.Before(c.quietUntil) {
		c.rrLoss = 0
	}
	if !c.rrPrevAt.IsZero() {
		dt := now.Sub(c.rrPrevAt).Seconds()
		got := int64(highestSeq-c.rrSeq) - int64(totalLost-c.rrLost)
		if dt >= 0.2 && got >= 0 && got < 1<<16 {
			r := float64(got) * c.meanPkt * 8 / dt
			if c.delivered == 0 {
				c.delivered = r
			}
			c.delivered += (r - c.delivered) / 2
		}
	}
	if c.rrPrevAt.IsZero() || now.Sub(c.rrPrevAt) >= 200*time.Millisecond {
		c.rrSeq, c.rrLost, c.rrPrevAt = highestSeq, totalLost, now
	}
}

// Decision says what to do with the next frame.
type Decision struct {
	Send     bool
	Pace     float64 // bit/s to pace at, 0 for no pacing
	NeedKey  bool    // the mode changed: restart at a keyframe
	Switched bool
	Mode     Mode
}

// Admit updates the state at now and decides about a frame of size
// bytes, age old. In full mode everything goes; in keyframe mode, a
// keyframe goes when the bucket holds enough for it and it would still be
// fresh (under keyAge) when its last packet leaves at the link's rate.
func (c *Link) Admit(now time.Time, keyframe bool, size int, age time.Duration) Decision {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := Decision{Mode: c.mode}
	if now.Sub(c.winStart) >= ccWindow {
		d = c.endWindow(now)
	}
	switch {
	case c.mode == Full:
		d.Send = true
	case !keyframe:
		// The picture after a keyframe goes too: it is small, decodable,
		// and it pushes the keyframe out of decoders that hold one
		// picture back until the next arrives (a second, at one keyframe
		// a second).
		d.Send, c.afterKey = c.afterKey, false
	default:
		c.tokens = min(c.tokens+now.Sub(c.tokensAt).Seconds()*c.rate, 2*c.rate)
		c.tokensAt = now
		bits := float64(size * 8)
		transfer := time.Duration(bits / c.rate * float64(time.Second))
		starved := now.Sub(c.lastKey) > 3*time.Second // the link is too slow for any keyframe to be fresh: send one anyway
		c.afterKey = false
		if c.tokens >= 0 && (age+transfer <= c.keyAge || starved) {
			c.lastKey, c.afterKey = now, true
			// The bucket may go negative by one keyframe: it is paced out
			// at the link rate, and the debt delays the next one.
			c.tokens -= bits
			// Pace at about what the link was seen to deliver (rate is
			// 0.85 of that): fast enough that the picture is fresh,
			// smooth enough that a short queue takes it whole.
			d.Send, d.Pace = true, c.rate*paceGain
		}
	}
	return d
}

func (c *Link) endWindow(now time.Time) Decision {
	span := now.Sub(c.winStart).Seconds()
	loss := 0.0
	if c.sentPkts > 0 {
		loss = float64(c.lostPkts) / float64(c.sentPkts)
	}
	// A receiver report covers the second before it: right after a mode
	// change it still counts what the old mode lost.
	rrValid := now.Sub(c.rrAt) < 2*ccWindow && c.rrAt.Sub(c.modeAt) > 1500*time.Millisecond
	if rrValid && c.rrLoss > loss {
		loss = c.rrLoss
	}
	lost := c.lostPkts >= minLossPackets || (rrValid && c.rrLoss > lossLimit)
	sentRate := float64(c.sentBytes*8) / span
	c.winStart, c.sentPkts, c.sentBytes, c.lostPkts = now, 0, 0, 0
	c.rrLoss = 0

	d := Decision{Mode: c.mode}
	congested := lost && loss > lossLimit
	switch {
	case c.mode == Full && congested:
		c.mode, c.modeAt = Keyframes, now
		c.lastKey = now
		c.switches++
		est := sentRate * (1 - min(loss, 0.9))
		if c.delivered > 0 {
			est = min(est, c.delivered)
		}
		c.rate = max(est*0.85, minRate)
		c.tokens, c.tokensAt = 0, now
		c.lastLoss = now
		if c.probing {
			c.probe = min(2*c.probe, maxProbe) // a failed probe
		}
		c.probing = false
		d = Decision{NeedKey: true, Switched: true, Mode: c.mode}
	case c.mode == Full:
		if c.probing && now.Sub(c.fullSince) > stableNormal {
			c.probe, c.probing = firstProbe, false
		}
	case congested:
		c.lastLoss = now
		c.rate = max(c.rate*0.8, minRate)
	case now.Sub(c.lastLoss) > c.probe:
		c.mode, c.probing, c.modeAt = Full, true, now
		c.fullSince = now
		d = Decision{NeedKey: true, Switched: true, Mode: c.mode}
	}
	return d
}

// State returns the mode and rate estimate, for stats.
func (c *Link) State() (Mode, float64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode, c.rate, c.switches
}
