package rtsp

import "time"

// clockRate is the RTP clock of H.264 video (RFC 6184 section 8.2.1).
const clockRate = 90000

// catchupStep is the spacing given to access units that are stamped by
// send time: the catch-up burst at join, and any unit that would otherwise
// not move the clock forward. One millisecond is short enough that a
// player runs through a cached GOP at once, and long enough that no two
// pictures share a timestamp (which RTP reserves for one picture).
const catchupStep = time.Millisecond

// clock gives one session's access units their RTP and NTP times. It is a
// pure function of what it is fed: no goroutines, no I/O.
//
// The session's origin is the moment its first unit is sent. A live unit
// (one that arrived after the viewer joined) is stamped with the time the
// feed received it, so the spacing a player sees is the camera's own and
// the RTP/NTP pair in sender reports is the arrival wall clock. A catch-up
// unit (cached before the viewer joined) is stamped with the time it is
// sent instead: the cached GOP is compressed into the few milliseconds the
// burst takes, so the first live unit lands right after it on the player's
// clock and the player shows it on arrival. Without this, a player that
// paces by timestamps would stay as far behind the camera as the keyframe
// was old, for the whole session. Every stamp is at least catchupStep after
// the previous one, so timestamps never go backwards or repeat.
type clock struct {
	started bool
	origin  time.Time     // wall and monotonic reading of the first send
	last    time.Duration // offset of the previous unit from origin
	initial uint32        // RTP timestamp of origin (random, RFC 3550 5.1)
}

// stamp returns the RTP timestamp and the NTP (wall clock) time of a unit
// received at received, sent at now, that is catch-up or live.
func (c *clock) stamp(received, now time.Time, catchup bool) (uint32, time.Time) {
	ref := received
	if catchup {
		ref = now
	}
	if !c.started {
		c.started, c.origin = true, now
		c.last = ref.Sub(now) - catchupStep
	}
	d := ref.Sub(c.origin)
	if d < c.last+catchupStep {
		d = c.last + catchupStep
	}
	c.last = d
	return c.initial + uint32(ticks(d)), c.origin.Add(d)
}

// ticks converts d to the 90 kHz clock without overflow for any duration
// a session can last.
func ticks(d time.Duration) int64 {
	return int64(d/time.Second)*clockRate + int64(d%time.Second)*clockRate/int64(time.Second)
}
