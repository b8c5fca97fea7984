package clip

import (
	"bytes"
	"errors"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/mediatime"
)

// ErrNoVideo is returned when the feed holds no keyframe yet.
var ErrNoVideo = errors.New("clip: no video yet")

// Clip is a clip planned over access units held in RAM: pointers to the
// shared units and their timing, nothing copied. It is cheap to make and
// is written out with WriteMP4.
//
// A clip of "the last N seconds" rarely begins on a keyframe, and a GOP can
// be seconds long. So the units start at the keyframe before the wanted
// start and an edit list (ISO/IEC 14496-12 §8.6.6) hides the ones before
// it: the file starts with a keyframe, players decode from it, and the
// duration shown is the one asked for, within a frame.
type Clip struct {
	// Start is when the first picture shown was received.
	Start time.Time
	// Duration is how long the clip plays.
	Duration time.Duration
	// Truncated is true when the feed held less than was asked for.
	Truncated bool
	// Frames is the number of pictures shown.
	Frames int

	units     []*h264.AccessUnit
	durations []uint32 // ticks each unit is shown
	skip      int      // leading units decoded but not shown
	skipTicks int64
	sps, pps  []byte
}

// Plan makes the clip that shows [from, to) out of units, which must be in
// feed order and should start at a keyframe at or before from (what
// hub.Since returns). A unit is shown for the time a mediatime.Clock
// gives it (one frame interval, kept on the source's clock), the last one
// for a frame. A unit belongs to
// the clip when its Received time is within half a frame of the range, so
// the duration is within one frame of to-from whatever the phase of the
// frames. frame is the feed's frame interval; 0 estimates it from units.
func Plan(units []*h264.AccessUnit, from, to time.Time, frame time.Duration) (*Clip, error) {
	if frame <= 0 {
		frame = mediatime.Interval(units)
	}
	half := frame / 2
	// The end: drop units that start past it.
	end := len(units)
	for end > 0 && !units[end-1].Received.Before(to.Add(-half)) {
		end--
	}
	units = units[:end]
	// The cut: the first unit shown.
	cut := 0
	for cut < len(units) && units[cut].Received.Before(from.Add(-half)) {
		cut++
	}
	// The keyframe to decode from.
	key := cut
	for key >= 0 && (key == len(units) || !units[key].Keyframe) {
		key--
	}
	if key < 0 || cut == len(units) {
		return nil, ErrNoVideo
	}
	sps, pps := paramSets(units[key])
	if sps == nil || pps == nil {
		return nil, ErrNoVideo
	}
	units = units[key:]
	// One MP4 sample entry holds one SPS and PPS: at a change of them (a
	// new picture size, a restarted encoder) the clip ends, as a
	// recording's segment does, and says it is short.
	changed := false
	if n := paramsRun(units, sps, pps); n < len(units) {
		units, changed = units[:n], true
	}
	c := &Clip{
		units:     units,
		durations: make([]uint32, len(units)),
		skip:      cut - key,
		sps:       sps,
		pps:       pps,
		Start:     units[cut-key].Received,
		Truncated: changed || units[cut-key].Received.After(from.Add(half)),
		Frames:    len(units) - (cut - key),
	}
	clock := mediatime.NewClock(frame, mediatime.Smooth)
	prev := clock.Next(units[0], false)
	for i := 1; i <= len(units); i++ {
		t := prev + clock.Frame()
		if i < len(units) {
			t = clock.Next(units[i], false)
		}
		c.durations[i-1] = uint32(t - prev)
		if i == c.skip {
			c.skipTicks = t
		}
		prev = t
	}
	c.Duration = mediatime.Duration(prev - c.skipTicks)
	return c, nil
}

// paramsRun is how many of units, from the first, belong to the stream
// whose parameter sets are sps and pps: up to the first keyframe that
// carries others.
func paramsRun(units []*h264.AccessUnit, sps, pps []byte) int {
	for i, au := range units {
		if i > 0 && au.Keyframe && !sameParams(au, sps, pps) {
			return i
		}
	}
	return len(units)
}

// sameParams reports whether the keyframe au carries sps and pps.
func sameParams(au *h264.AccessUnit, sps, pps []byte) bool {
	s, p := paramSets(au)
	return bytes.Equal(s, sps) && bytes.Equal(p, pps)
}

// lastParamsRun trims units (feed order, starting at a keyframe) to its
// tail that shares the newest keyframe's parameter sets: a clip of the
// last seconds shows the picture as it is now when the size changed
// within them. It reports whether anything was cut.
func lastParamsRun(units []*h264.AccessUnit) ([]*h264.AccessUnit, bool) {
	last := -1
	for i := len(units) - 1; i >= 0; i-- {
		if units[i].Keyframe {
			last = i
			break
		}
	}
	if last < 0 {
		return units, false
	}
	sps, pps := paramSets(units[last])
	start := last
	for i := last - 1; i >= 0; i-- {
		if !units[i].Keyframe {
			continue
		}
		if !sameParams(units[i], sps, pps) {
			return units[start:], true
		}
		start = i
	}
	return units, false
}

// paramSets returns a keyframe's SPS and PPS (the parser guarantees both).
func paramSets(au *h264.AccessUnit) (sps, pps []byte) {
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	return sps, pps
}

// inSampleEntry reports whether n is a parameter set that the sample
// entry (avcC) already carries: such NAL units are left out of the
// samples, as ISO/IEC 14496-15 §5.3.2 expects of avc1.
func (c *Clip) inSampleEntry(n []byte) bool {
	switch h264.TypeOf(n) {
	case h264.NALUTypeSPS:
		return bytes.Equal(n, c.sps)
	case h264.NALUTypePPS:
		return bytes.Equal(n, c.pps)
	}
	return false
}

// sampleSize is the AVCC size of a unit: a 4-byte length per NAL unit.
func (c *Clip) sampleSize(au *h264.AccessUnit) int {
	n := 0
	for _, nalu := range au.NALUs {
		if !c.inSampleEntry(nalu) {
			n += 4 + len(nalu)
		}
	}
	return n
}
