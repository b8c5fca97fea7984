package webrtc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/h264"
)

// syntheticAU makes an access unit of about size bytes: an SEI and one
// slice, as a camera at 2 Mbit/s, 30 fps sends (a keyframe also carries
// SPS and PPS). Outputs do not decode, so the slice bytes are filler.
func syntheticAU(size int, key bool, sps, pps []byte, at time.Time) *h264.AccessUnit {
	sei := h264.AppendTimeSEI(nil, h264.TimeIngest, at)
	typ := byte(1)
	if key {
		typ = 5
	}
	slice := make([]byte, size)
	slice[0] = 0x60 | typ
	for i := 1; i < len(slice); i++ {
		slice[i] = byte(i*7) | 1
	}
	nalus := [][]byte{sei, slice}
	if key {
		nalus = [][]byte{sps, pps, sei, slice}
	}
	var data []byte
	for _, n := range nalus {
		data = append(data, 0, 0, 0, 1)
		data = append(data, n...)
	}
	// NALUs must point into Data, as the parser makes them.
	out := make([][]byte, len(nalus))
	off := 0
	for i, n := range nalus {
		off += 4
		out[i] = data[off : off+len(n)]
		off += len(n)
	}
	return &h264.AccessUnit{Data: data, NALUs: out, Keyframe: key, Received: at}
}

type discardWriter struct{ n int }

func (w *discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.n += len(payload)
	return len(payload), nil
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// 2 Mbit/s at 30 fps: a P picture of 7.5 KB; a keyframe of 40 KB.
const benchP, benchKey = 7500, 40000

func BenchmarkPacketize(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
		key  bool
	}{{"P", benchP, false}, {"key", benchKey, true}} {
		b.Run(c.name, func(b *testing.B) {
			au := syntheticAU(c.size, c.key, []byte{0x67, 0x42, 0xc0, 0x1f}, []byte{0x68, 0xce}, time.Now())
			b.ReportAllocs()
			b.SetBytes(int64(c.size))
			for b.Loop() {
				packetize(au)
			}
		})
	}
}

// BenchmarkFanout is the per-access-unit cost of the shared path plus
// each peer's share: packetise once, then per peer the admission, header
// and history bookkeeping, down to the SRTP writer (replaced by a
// discarding one, so SRTP and the socket are not in the figure).
func BenchmarkFanout(b *testing.B) {
	for _, peers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			senders := make([]*peerSender, peers)
			for i := range senders {
				p := &peer{cc: newCongestion(time.Now(), time.Second), ctx: ctx, cancel: cancel, stale: time.Second, maxKeyAge: 2 * time.Second}
				senders[i] = &peerSender{p: p, w: &discardWriter{}, hdr: rtp.Header{Version: 2, PayloadType: 102, SSRC: uint32(i)}}
			}
			au := syntheticAU(benchP, false, nil, nil, time.Now())
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				au.Received = time.Now()
				fr := packetize(au)
				n++
				fr.n = n
				for _, ps := range senders {
					ps.send(fr)
				}
			}
		})
	}
}
