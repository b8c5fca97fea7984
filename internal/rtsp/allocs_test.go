//go:build !race

package rtsp

import (
	"testing"

	"github.com/camfeed/camfeed/internal/h264"
)

// TestPacketizeAllocs: packetising into a unit whose buffers are big
// enough allocates nothing, and a viewer getting a unit another viewer
// already had packetised allocates nothing either.
func TestPacketizeAllocs(t *testing.T) {
	for name, nalus := range packetizeCases(t) {
		var u rtpUnit
		u.packetize(nalus)
		if n := testing.AllocsPerRun(50, func() { u.packetize(nalus) }); n != 0 {
			t.Errorf("%s: packetize: %.1f allocations, want 0", name, n)
		}
	}
	var c unitCache
	f := hubFrame(&h264.AccessUnit{NALUs: packetizeCases(t)["pattern IDR 1280x720"]}, 7)
	c.get(f)
	if n := testing.AllocsPerRun(100, func() { c.get(f) }); n != 0 {
		t.Errorf("unitCache.get of a made unit: %.1f allocations, want 0", n)
	}
}

// TestUDPSendAllocs: sending a unit to a UDP viewer, segmented by the
// kernel or not, allocates nothing once the viewer's buffers have grown.
func TestUDPSendAllocs(t *testing.T) {
	v, _, u := udpTestViewer(t)
	for _, gso := range []bool{true, false} {
		v.udp.noGSO.Store(!gso)
		v.sendUDP(u, 0)
		if n := testing.AllocsPerRun(50, func() { v.sendUDP(u, 0) }); n != 0 {
			t.Errorf("sendUDP (segmentation %v): %.1f allocations, want 0", gso, n)
		}
	}
}
