// Package mediatime turns the times at which a feed's access units were
// captured or received into a regular media clock, for the outputs that
// write timestamps into files and playlists: clips, recordings and
// LL-HLS share this one rule.
//
// Arrival times jitter: a pipe hands over two frames in one read, a busy
// Pi delivers one late and the next on time. Written as they are, they
// make samples 1 tick apart followed by ones 2,999 apart at 90 kHz, which
// ffmpeg, asked to convert a clip, answers with "non monotonically
// increasing dts", and which make LL-HLS part durations wander ("part
// duration changed from 301ms to 309ms", an error for iOS). A camera's
// frames are regular, so the clock gives every unit one frame interval
// (measured over many frames) and follows the source's clock slowly:
//
//   - jitter, bursts and a late frame move nothing: the unit keeps its slot;
//   - the media time stays within a frame of the source's time over any
//     length, by moving a duration by a tick now and then (Smooth) or by
//     shortening the frame before a segment's keyframe (Segmented);
//   - a real gap (frames the camera dropped, a pause) stays a gap, in
//     whole frame intervals.
package mediatime

import (
	"math"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// Timescale is the media clock of clips, recordings and LL-HLS: 90 kHz,
// as RTP uses for video, so common frame intervals are whole ticks or
// close.
const Timescale = 90000

// Ticks converts d to ticks, rounded to the nearest.
func Ticks(d time.Duration) int64 {
	if d < 0 {
		return -Ticks(-d)
	}
	return (int64(d)*Timescale + int64(time.Second)/2) / int64(time.Second)
}

// Duration converts ticks to a duration.
func Duration(ticks int64) time.Duration {
	return time.Duration(ticks * int64(time.Second) / Timescale)
}

// Mode says how a Clock keeps the media time with the source's.
type Mode int

const (
	// Smooth gives each frame the interval rounded to a whole tick, and
	// moves one by a tick when the media time is an eighth of a frame off
	// the source's, never more: for clips and recordings. A tick a frame
	// follows a source whose rate is off by up to 1/3000 at 30 fps, far
	// more than two crystals differ (or 1001/1000 rates from rounding).
	Smooth Mode = iota
	// Segmented keeps every duration the same whole number of ticks, a
	// little longer than the frame interval, and takes back the
	// difference only in the frame before a keyframe that the caller
	// says starts a segment. LL-HLS needs that: a part is cut at the
	// first frame at or past the part target, so a duration a tick short
	// makes a part a frame longer, and the playlist's PART-TARGET (the
	// longest part, rounded up to the millisecond) must never change.
	Segmented
)

const (
	// rise is the weight of a later unit in the lag of the least
	// delayed ones: an earlier unit sets it at once.
	rise = 1.0 / 128
	// slotAt is how far behind (in frames) every unit must be, for
	// slotRun units in a row, before a frame slot is left empty: a frame
	// the camera dropped stays missing, while frames held up by a busy
	// machine come in a burst within half a second or so.
	slotAt  = 0.75
	slotRun = 15
	// pauseAt is how far one unit must be behind to be taken at once for
	// a pause of the source, in frames and at least pauseMin.
	pauseAt  = 4
	pauseMin = time.Second
)

// Clock gives access units media times in ticks. Call Next for each unit
// in feed order; the first gets 0 and the times always increase.
type Clock struct {
	mode  Mode
	frame float64 // ticks per frame
	min   float64 // Segmented: the least frame, whole ticks

	started  bool
	captured bool          // the source's times are its capture times
	offset   time.Duration // Captured − Received of the last unit that had both
	t0       time.Time
	out      float64 // media time of the last unit
	last     int64   // what Next returned last
	shift    float64 // added to source times: see Smooth's lag < 0
	lag      float64 // source time − media time of the least delayed units, ticks
	behind   int     // units in a row more than slotAt behind
	least    float64 // the least of their lags
}

// NewClock returns a clock for a feed whose frame interval is about frame
// (see Interval).
func NewClock(frame time.Duration, mode Mode) *Clock {
	f := float64(frame) * Timescale / float64(time.Second)
	if f < 1 || math.IsNaN(f) {
		f = Timescale / 30
	}
	c := &Clock{mode: mode, frame: math.Round(f)}
	if mode == Segmented {
		// A quarter tick over the measured interval, rounded up: the
		// media time runs ahead, never behind, and is taken back in
		// whole ticks at segment starts.
		c.frame = math.Ceil(f + 0.25)
		c.min = c.frame
	}
	return c
}

// Frame is the frame interval in ticks, rounded.
func (c *Clock) Frame() int64 { return int64(math.Round(c.frame)) }

// Last is the value Next returned last.
func (c *Clock) Last() int64 { return c.last }

// SourceTime is the time of au on the source's clock: its capture time
// when the stream carries one, else when camfeed received it.
func (c *Clock) SourceTime(au *h264.AccessUnit) time.Time {
	if !c.started {
		c.captured = !au.Captured.IsZero()
	}
	if !c.captured {
		return au.Received
	}
	if au.Captured.IsZero() {
		return au.Received.Add(c.offset)
	}
	c.offset = au.Captured.Sub(au.Received)
	return au.Captured
}

// Next returns the media time of au. segmentStart says that au is a
// keyframe that starts a segment: in Segmented mode, the only place where
// the media time may be taken back.
func (c *Clock) Next(au *h264.AccessUnit, segmentStart bool) int64 {
	return c.At(c.SourceTime(au), segmentStart)
}

// At is Next for a unit whose source time is t.
func (c *Clock) At(t time.Time, segmentStart bool) int64 {
	if !c.started {
		c.started, c.t0 = true, t
		return 0
	}
	raw := float64(t.Sub(c.t0))*Timescale/float64(time.Second) + c.shift
	next := c.out + c.frame
	if e := raw - next; e > max(pauseAt*c.frame, float64(pauseMin)*Timescale/float64(time.Second)) {
		// The source paused: leave the frames it did not make.
		k := math.Round(e / c.frame)
		next += k * c.frame
		c.lag, c.behind = e-k*c.frame, 0
	}
	e := raw - next
	if e > slotAt*c.frame {
		if c.behind == 0 || e < c.least {
			c.least = e
		}
		c.behind++
	} else {
		c.behind = 0
	}
	if c.behind >= slotRun {
		// Behind by most of a frame for a while: frames were dropped.
		// What is left behind is less than half a frame either way.
		k := math.Round(c.least / c.frame)
		next += k * c.frame
		e -= k * c.frame
		c.lag, c.behind = c.least-k*c.frame, 0
	}
	// lag follows the least delayed units: down at once, up slowly.
	if e < c.lag {
		c.lag = e
	} else {
		c.lag += (e - c.lag) * rise
	}
	corr := 0.0
	switch c.mode {
	case Smooth:
		if c.lag < -c.frame/4 {
			// The media time is ahead of the least delayed units: the
			// unit it started from (or one a slot was left for) came
			// late. The source's times are earlier than they seemed;
			// compressing frames to catch up would put two in one slot.
			c.shift -= c.lag
			c.lag = 0
		}
		// A tick at a time, and only when the least delayed units are
		// an eighth of a frame off: a steady feed's frames are then all
		// exactly one (whole) interval, which an MP4 sample table
		// holds as one entry.
		switch {
		case c.lag > c.frame/8:
			corr = 1
		case c.lag < -c.frame/8:
			corr = -1
		}
	case Segmented:
		if c.lag < -float64(pauseMin)*Timescale/float64(time.Second) {
			// The source's clock went back (a camera that restarted
			// its clock): start from here rather than take it back
			// half a frame per segment for ever.
			c.shift -= c.lag
			c.lag = 0
		}
		if segmentStart && c.lag < 0 {
			corr = math.Round(max(c.lag, -c.frame/2)) // whole ticks, as every frame
		}
		if segmentStart && c.lag > c.frame/4 && c.frame < c.min+8 {
			// Still behind though it runs fast: the first estimate
			// was short. A tick more per frame keeps each part within
			// the millisecond its length rounds up to.
			c.frame++
		}
	}
	c.out = next + corr
	c.lag -= corr
	v := max(int64(math.Round(c.out)), c.last+1)
	c.last = v
	return v
}
