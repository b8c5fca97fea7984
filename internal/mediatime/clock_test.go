package mediatime

import (
	"math"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// jitter is a deterministic arrival delay in [0, max): a linear
// congruential sequence, so failures reproduce.
type jitter struct{ x uint32 }

func (j *jitter) next(max time.Duration) time.Duration {
	j.x = j.x*1664525 + 1013904223
	return time.Duration(uint64(j.x>>8) * uint64(max) >> 24)
}

// arrivals makes n units of a feed with the given true frame interval,
// received with delays from delay(i), and with the frames that drop
// reports missing left out. It returns the units and each one's frame
// number.
func arrivals(t0 time.Time, n int, frame time.Duration, delay func(i int) time.Duration, drop func(i int) bool) ([]*h264.AccessUnit, []int) {
	var units []*h264.AccessUnit
	var nums []int
	for i := range n {
		if drop != nil && drop(i) {
			continue
		}
		units = append(units, &h264.AccessUnit{Received: t0.Add(time.Duration(i)*frame + delay(i)), Keyframe: i%60 == 0})
		nums = append(nums, i)
	}
	// Arrival order is feed order even when a delay would swap two.
	for i := 1; i < len(units); i++ {
		if units[i].Received.Before(units[i-1].Received) {
			units[i].Received = units[i-1].Received
		}
	}
	return units, nums
}

func TestClockSmooth(t *testing.T) {
	t0 := time.Now()
	const frame = time.Second / 30 // 3000 ticks
	j := jitter{x: 1}
	for _, tc := range []struct {
		name  string
		n     int
		frame time.Duration
		delay func(i int) time.Duration
		drop  func(i int) bool
		// irregular is how many durations may be off the frame interval
		// (times the frames they span) by more than a tick: a dropped
		// frame is seen for one half a second later, and its slot is
		// left there.
		irregular int
		// stray is how far (in frames) the media time may stray from the
		// source's: a dropped frame is only known for one after half a
		// second, and so is a pause shorter than pauseMin, which may be
		// frames held up that come in a burst.
		stray float64
	}{
		{"jitter of 8 ms", 9000, frame, func(int) time.Duration { return j.next(8 * time.Millisecond) }, nil, 0, 1},
		{"every 7th frame a frame late, with the next", 9000, frame, func(i int) time.Duration {
			if i%7 == 3 {
				return frame - time.Microsecond
			}
			return j.next(2 * time.Millisecond)
		}, nil, 0, 1},
		{"dropped frames", 9000, frame, func(int) time.Duration { return j.next(4 * time.Millisecond) }, func(i int) bool { return i%1000 == 500 }, 2 * 9, 1.5},
		{"a 2 s pause", 3000, frame, func(int) time.Duration { return j.next(4 * time.Millisecond) }, func(i int) bool { return i >= 1000 && i < 1060 }, 1, 1},
		{"a 360 ms pause", 3000, frame, func(int) time.Duration { return j.next(4 * time.Millisecond) }, func(i int) bool { return i >= 1000 && i < 1011 }, 2, 12},
		{"the first unit late by 3 frames", 3000, frame, func(i int) time.Duration {
			if i == 0 {
				return 3 * frame
			}
			return j.next(4 * time.Millisecond)
		}, nil, 0, 3.5},
		{"a 300 ms stall then a burst", 3000, frame, func(i int) time.Duration {
			if i >= 1000 && i < 1010 {
				return time.Duration(1010-i) * frame
			}
			return j.next(4 * time.Millisecond)
		}, nil, 0, 1},
		{"29.97 fps", 9000, time.Second * 1001 / 30000, func(int) time.Duration { return j.next(6 * time.Millisecond) }, nil, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			units, nums := arrivals(t0, tc.n, tc.frame, tc.delay, tc.drop)
			// Measured over the first 10 s, as a recording's first
			// segment is.
			est := Interval(units[:300])
			c := NewClock(est, Smooth)
			want := float64(tc.frame) * Timescale / float64(time.Second)
			prev := int64(0)
			worst, irregular, short := 0.0, 0, 0
			for i, au := range units {
				v := c.Next(au, au.Keyframe)
				if i > 0 {
					d := float64(v - prev)
					slots := float64(nums[i] - nums[i-1])
					if d < want-1.5 {
						short++ // two frames in one slot of a CFR conversion: ffmpeg's "non monotonically increasing dts"
					}
					if math.Abs(d-slots*want) > 1.5 {
						irregular++
						if irregular <= 5 {
							t.Logf("unit %d (frame %d): %v ticks, want %.1f", i, nums[i], d, slots*want)
						}
					}
				}
				prev = v
				// Within a frame of the source's time (frame number × the
				// true interval) after the first second.
				if off := math.Abs(float64(v) - float64(nums[i])*want); i > 30 && off > worst {
					worst = off
				}
			}
			t.Logf("estimate %v; %d irregular durations; worst offset %.0f ticks", est, irregular, worst)
			if short > 0 {
				t.Errorf("%d durations shorter than the frame interval by more than a tick", short)
			}
			if irregular > tc.irregular {
				t.Errorf("%d durations off the frame interval by more than a tick, want at most %d", irregular, tc.irregular)
			}
			if worst > tc.stray*want {
				t.Errorf("the media time strayed %.0f ticks from the source's", worst)
			}
			if end := math.Abs(float64(prev) - float64(nums[len(nums)-1])*want); end > want {
				t.Errorf("at the end the media time is %.0f ticks off the source's", end)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	t0 := time.Now()
	at := func(ms []int) []*h264.AccessUnit {
		out := make([]*h264.AccessUnit, len(ms))
		for i, m := range ms {
			out[i] = &h264.AccessUnit{Received: t0.Add(time.Duration(m) * time.Millisecond)}
		}
		return out
	}
	even := func(n, step int) []int {
		ms := make([]int, n)
		for i := range ms {
			ms[i] = i * step
		}
		return ms
	}
	pairs := make([]int, 60)
	for i := range pairs {
		pairs[i] = i / 2 * 67
	}
	stall := even(60, 33)
	for i := 30; i < 60; i++ {
		stall[i] += 5000
	}
	captured := at(even(30, 50))
	for i, au := range captured {
		au.Captured = t0.Add(-time.Hour + time.Duration(i)*40*time.Millisecond)
	}
	for _, tc := range []struct {
		name  string
		units []*h264.AccessUnit
		want  time.Duration
	}{
		{"steady", at(even(60, 40)), 40 * time.Millisecond},
		{"pairs", at(pairs), 33500 * time.Microsecond},
		{"a stall", at(stall), 33 * time.Millisecond},
		{"capture times when the stream has them", captured, 40 * time.Millisecond},
		{"one unit", at([]int{0}), time.Second / 30},
		{"no time", at([]int{0, 0, 0}), time.Second / 30},
	} {
		// The units' times are made up here, no clock is read: the
		// tolerance is the estimate's arithmetic, a tenth of a millisecond.
		got, tol := Interval(tc.units), time.Second/10000
		if d := (got - tc.want).Abs(); d > tol {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestClockSegmented: every frame is the same whole number of ticks but
// for the one before a segment's keyframe, which may only be shorter; and
// the media time keeps to the source's even when the interval measured at
// the start was 0.5% off.
func TestClockSegmented(t *testing.T) {
	t0 := time.Now()
	const frame = time.Second / 25
	j := jitter{x: 7}
	units, _ := arrivals(t0, 15000, frame, func(i int) time.Duration {
		if i%11 == 4 {
			return frame
		}
		return j.next(8 * time.Millisecond)
	}, nil)
	c := NewClock(frame+frame/200, Segmented)
	fixed := c.Frame()
	prev := int64(0)
	for i, au := range units {
		start := i%50 == 0 && i > 0
		v := c.Next(au, start)
		if i > 0 {
			d := v - prev
			switch {
			case start && d > fixed:
				t.Fatalf("unit %d starts a segment: the frame before it is %d ticks, longer than %d", i, d, fixed)
			case !start && d != fixed:
				t.Fatalf("unit %d: %d ticks, want %d", i, d, fixed)
			}
		}
		prev = v
	}
	want := Ticks(time.Duration(len(units)-1) * frame)
	if off := prev - want; off < -Ticks(frame) || off > Ticks(frame) {
		t.Errorf("after %d frames the media time is %d ticks off the source's", len(units), off)
	}
}

// FuzzClock: whatever the times (backwards, bunched, far apart) and
// wherever segments start, media times always increase, and the
// measured interval is positive.
func FuzzClock(f *testing.F) {
	f.Add([]byte{33, 33, 34, 0, 66, 33, 200, 1, 33}, false)
	f.Add([]byte{40, 0, 0, 120, 40, 255, 40, 40}, true)
	f.Fuzz(func(t *testing.T, steps []byte, segmented bool) {
		mode := Smooth
		if segmented {
			mode = Segmented
		}
		c := NewClock(33*time.Millisecond, mode)
		at := time.Unix(1e9, 0)
		prev := int64(-1)
		var units []*h264.AccessUnit
		for i, b := range steps {
			// Steps of -64..191 ms, scaled up now and then.
			d := time.Duration(int(b)-64) * time.Millisecond
			if b%17 == 0 {
				d *= 100
			}
			at = at.Add(d)
			au := &h264.AccessUnit{Received: at, Keyframe: i%10 == 0}
			if b%5 == 0 {
				au.Captured = at.Add(-time.Hour)
			}
			units = append(units, au)
			v := c.Next(au, au.Keyframe)
			if v <= prev {
				t.Fatalf("unit %d: %d after %d", i, v, prev)
			}
			prev = v
		}
		if d := Interval(units); d <= 0 {
			t.Fatalf("interval %v", d)
		}
	})
}

// TestEstimate: a feed that just started is not measured from its first
// units, whose spacing says little, but taken at its SPS's frame rate.
func TestEstimate(t *testing.T) {
	t0 := time.Now()
	few := []*h264.AccessUnit{{Received: t0}, {Received: t0.Add(36 * time.Millisecond)}}
	if got := Estimate(few, 25); got != 40*time.Millisecond {
		t.Errorf("two units, 25 fps in the SPS: %v", got)
	}
	if got := Estimate(few, 0); got != time.Second/30 {
		t.Errorf("two units, no rate in the SPS: %v", got)
	}
	var many []*h264.AccessUnit
	for i := range 60 {
		many = append(many, &h264.AccessUnit{Received: t0.Add(time.Duration(i) * 50 * time.Millisecond)})
	}
	if got := Estimate(many, 25); got != 50*time.Millisecond {
		t.Errorf("60 units 50 ms apart, 25 fps in the SPS: %v", got)
	}
}
