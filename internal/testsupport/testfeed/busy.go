package testfeed

import (
	"slices"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// Busy gives frames the arrival times that a busy machine gives a
// camera's frames: up to 8 ms late (a deterministic sequence, so failures
// reproduce), one frame in seven a whole frame late so that it comes with
// the next, and every 50th frame a 100 ms hiccup after which four frames
// come at once. Arrival order is feed order. The zero Busy is ready.
type Busy struct {
	x    uint32
	last time.Time
}

// Received returns when frame i (counted from 0 at start), captured at
// capt, arrives; frame is the frame interval.
func (b *Busy) Received(i int, start, capt time.Time, frame time.Duration) time.Time {
	b.x = b.x*1664525 + 1013904223
	recv := capt.Add(time.Duration(uint64(b.x>>8) * uint64(8*time.Millisecond) >> 24))
	switch {
	case i%7 == 3:
		recv = capt.Add(frame)
	case i%50 >= 20 && i%50 < 24:
		recv = start.Add(time.Duration(i-i%50+24) * frame)
	}
	if recv.Before(b.last) {
		recv = b.last
	}
	b.last = recv
	return recv
}

// WithoutCaptureTime returns nalus without the capture time SEI, as from
// a camera that stamps nothing: only arrival times are known then.
func WithoutCaptureTime(nalus [][]byte) [][]byte {
	return slices.DeleteFunc(slices.Clone(nalus), func(n []byte) bool { return h264.TypeOf(n) == h264.NALUTypeSEI })
}
