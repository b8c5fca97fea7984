package testfeed

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// Units parses an Annex-B byte stream, as a viewer received it, into
// access units. A unit cut off at the end is left out.
func Units(data []byte) []*h264.AccessUnit {
	var out []*h264.AccessUnit
	p := h264.NewParser(h264.ParserConfig{})
	p.Write(data, time.Now(), func(au *h264.AccessUnit) { out = append(out, au) })
	return out
}

// CheckStream asserts what must hold exactly for anything a viewer
// receives: the first unit is a keyframe that carries its SPS and PPS,
// and every gap (a frame_num that does not follow on from the previous
// picture's) ends at a keyframe, so no picture is decoded without its
// reference. Every picture is a reference picture in the test pattern.
// It returns how many times the stream jumped ahead to a keyframe (at
// 30 fps or more).
func CheckStream(t testing.TB, who string, units []*h264.AccessUnit) (skips int) {
	t.Helper()
	if len(units) == 0 {
		t.Fatalf("%s: nothing received", who)
	}
	first := units[0]
	var sps, pps bool
	for _, n := range first.NALUs {
		sps = sps || h264.TypeOf(n) == h264.NALUTypeSPS
		pps = pps || h264.TypeOf(n) == h264.NALUTypePPS
	}
	if !first.Keyframe || !sps || !pps {
		t.Fatalf("%s: first unit keyframe %v, SPS %v, PPS %v: want all three", who, first.Keyframe, sps, pps)
	}
	var info h264.Info
	var prev uint32
	for i, au := range units {
		for _, n := range au.NALUs {
			if h264.TypeOf(n) == h264.NALUTypeSPS {
				info, _ = h264.ParseSPS(n)
			}
		}
		var fn uint32
		for _, n := range au.NALUs {
			if v, ok := h264.FrameNum(n, info); ok {
				fn = v
				break
			}
		}
		if i > 0 && !au.Keyframe && fn != (prev+1)%(1<<info.Log2MaxFrameNum) {
			t.Fatalf("%s: unit %d has frame_num %d after %d and is not a keyframe: a reference is missing", who, i, fn, prev)
		}
		// A keyframe also starts each GOP; it was a jump when the capture
		// times (from the pattern's SEI) skip more than a frame or two.
		if i > 0 && au.Keyframe && au.Captured.Sub(units[i-1].Captured) > 50*time.Millisecond {
			skips++
		}
		prev = fn
	}
	return skips
}
