package clip

import (
	"slices"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// Timescale is the MP4 media clock of clips and recordings: 90 kHz, as
// RTP uses for video, so common frame intervals are whole ticks or close.
const Timescale = 90000

// Clock turns the Received times of a feed's units into MP4 decode times.
//
// Received times jitter: a pipe hands over two frames in one read, a busy
// Pi delivers one late. Written as they are, they make a variable frame
// rate file that players accept but that ffmpeg, asked to convert it,
// answers with "non monotonically increasing dts" and dropped frames. So
// a time is snapped to the feed's frame grid when it is near it, and a
// unit that lands on the slot of the one before moves to the next slot,
// as long as that keeps it within one and a half frames of its real time.
// Real gaps (dropped frames, a stall) stay in the timeline, and times never
// drift from the Received clock by more than that.
type Clock struct {
	t0    time.Time
	frame int64 // ticks
	prev  int64
	first bool
}

// NewClock returns a clock whose tick 0 is t0, for a feed with the given
// frame interval.
func NewClock(t0 time.Time, frame time.Duration) *Clock {
	return &Clock{t0: t0, frame: max(ticks(frame), 1), first: true}
}

// Ticks returns the decode time of a unit received at t; successive calls
// must be in feed order, and the result always increases.
func (c *Clock) Ticks(t time.Time) int64 {
	raw := ticks(t.Sub(c.t0))
	v := (raw + c.frame/2) / c.frame * c.frame
	if raw < 0 {
		v = raw
	}
	if !c.first && v <= c.prev {
		v = c.prev + c.frame
		if v-raw > c.frame+c.frame/2 {
			v = c.prev + 1
		}
	}
	c.first = false
	c.prev = v
	return v
}

// Last is the value Ticks returned last.
func (c *Clock) Last() int64 { return c.prev }

// Frame is the frame interval in ticks.
func (c *Clock) Frame() int64 { return c.frame }

func ticks(d time.Duration) int64 {
	if d < 0 {
		return -ticks(-d)
	}
	return (int64(d)*Timescale + int64(time.Second)/2) / int64(time.Second)
}

// FrameInterval estimates a feed's frame interval from units in feed
// order: the median of the mean spacing over up to 16 runs of equal
// length. Long runs average out arrival jitter, which matters because a
// Clock snaps to this grid over thousands of frames; the median ignores
// the runs that hold a stall or a burst. It falls back to 1/30 s when the
// units span no time.
func FrameInterval(units []*h264.AccessUnit) time.Duration {
	const runs = 16
	n := len(units) - 1
	if n < 1 {
		return time.Second / 30
	}
	run := max(n/runs, min(n, 4))
	var buf [runs + 1]time.Duration
	ds := buf[:0]
	for i := n; i-run >= 0 && len(ds) < len(buf); i -= run {
		ds = append(ds, units[i].Received.Sub(units[i-run].Received)/time.Duration(run))
	}
	slices.Sort(ds)
	if d := ds[len(ds)/2]; d > 0 {
		return d
	}
	return time.Second / 30
}
