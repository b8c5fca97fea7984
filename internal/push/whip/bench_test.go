package whip

import (
	"testing"

	"github.com/camfeed/camfeed/internal/push/whip/whiptest"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// BenchmarkWriteUnit pushes one GOP of the test pattern (320x240, 30
// units, a 115 KB keyframe) round and round to the pion receiver on
// loopback: RTP packetization, pion's interceptors, SRTP and the UDP
// sends, per unit.
func BenchmarkWriteUnit(b *testing.B) {
	units, params := testfeed.Pattern(b, small, 30)
	r := whiptest.Start(b, token)
	w, err := dialTest(b, r.URL(""), params, Options{Token: token})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	testfeed.BenchWriteUnit(b, w, units, small.FPS)
}
