//go:build !race

package webrtc

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestFanoutAllocs asserts docs/perf/browser.md's claim: packetising a
// unit allocates a fixed 3 times (the frame, its packet list, one buffer
// for the FU-A fragments), whatever its size, and sending it to each peer
// allocates nothing: payloads are shared, headers are per-peer values.
// (Not under -race; .ci/run runs `go test -run Alloc ./...`.)
func TestFanoutAllocs(t *testing.T) {
	for _, size := range []int{benchP, benchKey} {
		au := syntheticAU(size, size == benchKey, []byte{0x67, 0x42, 0xc0, 0x1f}, []byte{0x68, 0xce}, time.Now())
		if n := testing.AllocsPerRun(100, func() { packetize(au) }); n > 3 {
			t.Errorf("packetize of %d bytes: %v allocations, want at most 3", size, n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	senders := make([]*peerSender, 10)
	for i := range senders {
		p := &peer{cc: newCongestion(time.Now(), time.Second), ctx: ctx, cancel: cancel, stale: time.Second, maxKeyAge: 2 * time.Second}
		senders[i] = &peerSender{p: p, w: &discardWriter{}, hdr: rtp.Header{Version: 2, PayloadType: 102, SSRC: uint32(i)}}
	}
	au := syntheticAU(benchP, false, nil, nil, time.Now())
	var n uint64
	fr := packetize(au)
	send := func() {
		n++
		fr.n = n
		for _, ps := range senders {
			ps.send(fr)
		}
	}
	for range 100 { // warm up: the NACK histories fill
		send()
	}
	if a := testing.AllocsPerRun(1000, send); a != 0 {
		t.Errorf("sending a packetised unit to 10 peers: %v allocations, want 0", a)
	}
}
