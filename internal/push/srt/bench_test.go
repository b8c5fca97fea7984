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
	size := 0
	for _, au := range units {
		size += len(au.Data)
	}
	b.SetBytes(int64(size / len(units)))
	b.ReportAllocs()
	b.ResetTimer()
	period := time.Second / time.Duration(small.FPS)
	for i := 0; i < b.N; i++ {
		if err := w.WriteUnit(units[i%len(units)], time.Duration(i)*period); err != nil {
			b.Fatal(err)
		}
	}
}
