package srt

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// BenchmarkWriteUnit pushes one GOP of the test pattern (320x240, 30
// units, a 115 KB keyframe) round and round to srt-live-transmit on
// loopback: MPEG-TS muxing, gosrt's packets and the UDP sends, per unit.
func BenchmarkWriteUnit(b *testing.B) {
	units, params := testfeed.Pattern(b, small, 30)
	r := startReceiver(b, "")
	w, err := dialTest(b, r.url(""), params, 3*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	testfeed.BenchWriteUnit(b, w, units, small.FPS)
}
