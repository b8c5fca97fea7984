package clip

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// units makes n units at the given offsets (ms) from t0, a keyframe every
// gop units.
func units(t0 time.Time, ms []int, gop int) []*h264.AccessUnit {
	out := make([]*h264.AccessUnit, len(ms))
	for i, m := range ms {
		au := &h264.AccessUnit{Received: t0.Add(time.Duration(m) * time.Millisecond), Keyframe: i%gop == 0}
		slice := []byte{0x41, 0x9a, byte(i)}
		if au.Keyframe {
			slice[0] = 0x65
			au.NALUs = [][]byte{testSPS, testPPS, slice}
		} else {
			au.NALUs = [][]byte{slice}
		}
		out[i] = au
	}
	return out
}

func even(n, step int) []int {
	ms := make([]int, n)
	for i := range ms {
		ms[i] = i * step
	}
	return ms
}

func TestPlan(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	ms := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Millisecond) }
	cases := []struct {
		name       string
		ms         []int
		gop        int
		from, to   time.Time
		frame      time.Duration
		wantDur    time.Duration
		wantFrames int
		wantSkip   int
		wantTrunc  bool
		wantStart  time.Time
	}{
		{
			name: "whole GOPs", ms: even(100, 40), gop: 25,
			from: ms(1000), to: ms(4000), frame: 40 * time.Millisecond,
			wantDur: 3 * time.Second, wantFrames: 75, wantSkip: 0, wantStart: ms(1000),
		},
		{
			name: "cut inside a GOP", ms: even(100, 40), gop: 25,
			from: ms(1400), to: ms(4000), frame: 40 * time.Millisecond,
			wantDur: 2600 * time.Millisecond, wantFrames: 65, wantSkip: 10, wantStart: ms(1400),
		},
		{
			name: "cut between frames rounds to the nearest", ms: even(100, 40), gop: 25,
			from: ms(1415), to: ms(3990), frame: 40 * time.Millisecond,
			wantDur: 2600 * time.Millisecond, wantFrames: 65, wantSkip: 10, wantStart: ms(1400),
		},
		{
			name: "more than held", ms: even(50, 40), gop: 25,
			from: ms(-5000), to: ms(2000), frame: 40 * time.Millisecond,
			wantDur: 2 * time.Second, wantFrames: 50, wantTrunc: true, wantStart: ms(0),
		},
		{
			name: "units in bursts keep increasing times", ms: []int{0, 0, 80, 80, 160, 160, 240, 240}, gop: 4,
			from: ms(0), to: ms(320), frame: 40 * time.Millisecond,
			wantDur: 320 * time.Millisecond, wantFrames: 8, wantStart: ms(0),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			us := units(t0, tc.ms, tc.gop)
			c, err := Plan(us, tc.from, tc.to, tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if d := c.Duration - tc.wantDur; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("duration %v, want %v", c.Duration, tc.wantDur)
			}
			if asked := tc.to.Sub(tc.from); !tc.wantTrunc && (c.Duration < asked-tc.frame || c.Duration > asked+tc.frame) {
				t.Errorf("duration %v is not within a frame of %v", c.Duration, asked)
			}
			if c.Frames != tc.wantFrames || c.skip != tc.wantSkip || c.Truncated != tc.wantTrunc || !c.Start.Equal(tc.wantStart) {
				t.Errorf("frames %d skip %d truncated %v start %v, want %d %d %v %v",
					c.Frames, c.skip, c.Truncated, c.Start.Sub(t0), tc.wantFrames, tc.wantSkip, tc.wantTrunc, tc.wantStart.Sub(t0))
			}
			if !c.units[0].Keyframe {
				t.Error("clip does not start with a keyframe")
			}
			for i, d := range c.durations {
				if d == 0 {
					t.Errorf("sample %d has no duration", i)
				}
			}
		})
	}
}

func TestPlanNoVideo(t *testing.T) {
	t0 := time.Now()
	if _, err := Plan(nil, t0, t0.Add(time.Second), 0); err != ErrNoVideo {
		t.Errorf("no units: %v", err)
	}
	us := units(t0, even(10, 40), 25)
	us[0].Keyframe = false
	if _, err := Plan(us, t0, t0.Add(time.Second), 0); err != ErrNoVideo {
		t.Errorf("no keyframe: %v", err)
	}
}
