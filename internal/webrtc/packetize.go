package webrtc

import (
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// maxPayload keeps RTP packets, with headers, SRTP tag and the playout
// delay extension, under a 1200-byte UDP payload: safe on any path,
// including VPNs and ICE-TCP framing, without path MTU discovery.
const maxPayload = 1100

// packet is one RTP payload and its marker bit. Payloads are shared by
// every peer and never written after packetize returns.
type packet struct {
	payload []byte
	marker  bool
}

// frame is one access unit packetised once for all peers. Each peer adds
// its own sequence numbers and SSRC when it writes, so skipping frames for
// one peer leaves no gap in its sequence.
type frame struct {
	pkts     []packet
	ts       uint32 // RTP timestamp: ingest time on the 90 kHz clock
	keyframe bool
	size     int    // payload bytes
	n        uint64 // the feed's sequence number (hub.Frame.Seq)
	received time.Time
}

// rtpTime maps a wall-clock time to the 90 kHz RTP clock (µs * 9 / 100,
// wrapping every 13.25 h). The viewer unwraps it against its estimate of
// the server clock to show server→screen latency, so RTP timestamps are
// ingest times rather than a random offset (RFC 3550 §5.1 recommends a
// random start against plaintext attacks, which SRTP makes moot).
func rtpTime(t time.Time) uint32 { return uint32(t.UnixMicro() * 9 / 100) }

// packetize splits an access unit into RTP payloads per RFC 6184 with
// packetization-mode=1: a NAL unit that fits goes alone (§5.6), a larger
// one in FU-A fragments (§5.8). Small NAL units are not aggregated
// (STAP-A), which costs a few packets per keyframe but lets single NAL
// payloads point into the access unit without a copy. AUD and filler
// data are dropped; SEI (the camfeed time stamps) is kept.
//
// All FU-A payloads of the unit share one allocation.
func packetize(au *h264.AccessUnit) *frame {
	f := &frame{ts: rtpTime(au.Received), keyframe: au.Keyframe, received: au.Received}
	n, extra := 0, 0
	for _, nal := range au.NALUs {
		if skipNAL(nal) {
			continue
		}
		if len(nal) <= maxPayload {
			n++
			continue
		}
		k := (len(nal) - 1 + maxPayload - 3) / (maxPayload - 2)
		n += k
		extra += len(nal) - 1 + 2*k
	}
	f.pkts = make([]packet, 0, n)
	buf := make([]byte, 0, extra)
	for _, nal := range au.NALUs {
		if skipNAL(nal) {
			continue
		}
		if len(nal) <= maxPayload {
			f.pkts = append(f.pkts, packet{payload: nal})
			f.size += len(nal)
			continue
		}
		indicator := nal[0]&0xe0 | 28 // F, NRI, type FU-A
		typ := nal[0] & 0x1f
		data := nal[1:]
		for first := true; len(data) > 0; first = false {
			chunk := min(len(data), maxPayload-2)
			hdr := typ
			if first {
				hdr |= 0x80 // S
			}
			if chunk == len(data) {
				hdr |= 0x40 // E
			}
			start := len(buf)
			buf = append(buf, indicator, hdr)
			buf = append(buf, data[:chunk]...)
			f.pkts = append(f.pkts, packet{payload: buf[start:len(buf):len(buf)]})
			f.size += len(buf) - start
			data = data[chunk:]
		}
	}
	if len(f.pkts) > 0 {
		f.pkts[len(f.pkts)-1].marker = true
	}
	return f
}

func skipNAL(nal []byte) bool {
	switch h264.TypeOf(nal) {
	case 0, h264.NALUTypeAUD, h264.NALUTypeFiller:
		return true
	}
	return false
}
