package mediatime

import (
	"slices"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// fallback is the frame interval assumed when the units span no time.
const fallback = time.Second / 30

// Interval estimates a feed's frame interval from the source times of
// units in feed order (see Clock.SourceTime).
//
// Units only ever arrive late, never early: jitter, a frame that comes
// with the next, a burst after a hiccup all delay some units. So the
// estimate follows the least delayed ones. Against frame number, the
// times lie on a line of slope the interval, plus delays; where frames
// are missing (a drop, a pause) the line steps up. The units are cut into
// runs at those steps (the least delay over the next few units jumps by
// half a frame or more), and in each run the interval is taken between
// the least delayed unit of its first third and that of its last third.
// The runs' spans are pooled: over 20 s of frames that jitter by 8 ms it
// is within a fraction of a tick of the truth, which a Clock needs to keep
// to the source's time with half-tick nudges. It falls back to 1/30 s when
// the units span no time.
func Interval(units []*h264.AccessUnit) time.Duration {
	if len(units) < 2 {
		return fallback
	}
	var c Clock
	times := make([]time.Duration, len(units))
	t0 := c.SourceTime(units[0])
	c.started = true
	for i, au := range units {
		times[i] = c.SourceTime(au).Sub(t0)
	}
	return intervalOf(times)
}

// measureFrom is the least number of units Estimate measures the
// interval from.
const measureFrom = 16

// Estimate is the frame interval to start a Clock with: measured from
// units (see Interval) when there are enough of them, else the frame rate
// the SPS gives (fps, 0 when it gives none), else 1/30 s. A feed that has
// just started holds a unit or two, and an interval measured from those
// can be off by a tenth.
func Estimate(units []*h264.AccessUnit, fps float64) time.Duration {
	switch {
	case len(units) >= measureFrom:
		return Interval(units)
	case fps >= 1 && fps <= 240:
		return time.Duration(float64(time.Second) / fps)
	}
	return fallback
}

// stepWindow is how many units on each side of a point the least delay
// is taken over to find a step: longer than any burst of held-up units.
const stepWindow = 10

func intervalOf(times []time.Duration) time.Duration {
	ds := make([]time.Duration, 0, len(times))
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d > 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return fallback
	}
	slices.Sort(ds)
	est := float64(ds[len(ds)/2])
	r := make([]float64, len(times))
	// Twice: the second pass finds the steps and the least delayed units
	// against a far better slope.
	for range 2 {
		for i, t := range times {
			r[i] = float64(t) - est*float64(i)
		}
		var span, frames float64
		start := 0
		for i := 1; i <= len(times); i++ {
			if i < len(times) && !(i >= stepWindow && i+stepWindow <= len(times) &&
				slices.Min(r[i:i+stepWindow])-slices.Min(r[i-stepWindow:i]) > est/2) {
				continue
			}
			if run := r[start:i]; len(run) >= 6 {
				third := len(run) / 3
				a := start + argmin(run[:third])
				b := start + len(run) - third + argmin(run[len(run)-third:])
				span += float64(times[b] - times[a])
				frames += float64(b - a)
			}
			start = i
		}
		if frames == 0 || span <= 0 {
			break
		}
		est = span / frames
	}
	return time.Duration(est)
}

func argmin(v []float64) int {
	k := 0
	for i, x := range v {
		if x < v[k] {
			k = i
		}
	}
	return k
}
