package push

import (
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// clock gives a target's presentation times: from each unit's capture
// time (Captured, else Received), against one base for the target's whole
// life, so that they stay monotonic across skips and reconnects. A server
// sees the gap a skip or a reconnect left, which is the truth, and never
// a step back: when the source's clock steps back (a restart, a camera
// that changed mode), the base moves so that time goes on from the last
// unit sent plus a millisecond. Units captured less than a millisecond
// apart (a source that delivered a burst) are spread a millisecond apart,
// since RTMP and FLV count milliseconds, without moving the base.
type clock struct {
	base    time.Time
	last    time.Duration
	started bool
}

// stepBack is how far back the source's clock must go to be taken as a
// new clock rather than jitter.
const stepBack = time.Second

func (c *clock) pts(au *h264.AccessUnit) time.Duration {
	t := au.Captured
	if t.IsZero() {
		t = au.Received
	}
	if !c.started {
		c.base, c.started = t, true
		return 0
	}
	d := t.Sub(c.base)
	next := c.last + time.Millisecond
	switch {
	case d < c.last-stepBack:
		c.base = t.Add(-next)
		d = next
	case d < next:
		d = next
	}
	c.last = d
	return d
}
