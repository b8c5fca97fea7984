package rtsp

import (
	"sync"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
)

// maxPayload is the largest RTP payload: 1500 (Ethernet MTU) less the IP,
// UDP, RTP and SRTP headers, as gortsplib's rtph264.Encoder uses.
const maxPayload = 1450

// NAL unit types of RFC 6184's payload structures (5.4).
const (
	typeSTAPA = 24
	typeFUA   = 28
)

// rtpUnit is one access unit packetised for RTP (RFC 6184, packetization
// mode 1), once for every viewer of a feed. It holds the payloads only:
// each viewer puts its own header (SSRC, sequence number, timestamp) in
// front of them, so that its clock (see clock) and sequence stay its own
// while the packetisation and the payload bytes are shared. It is
// immutable once made.
type rtpUnit struct {
	au   *h264.AccessUnit
	buf  []byte // the payloads, back to back
	ends []int  // where each payload ends in buf
}

// packets is the number of RTP packets of the unit; the last one carries
// the marker bit.
func (u *rtpUnit) packets() int { return len(u.ends) }

// payload returns packet i's payload.
func (u *rtpUnit) payload(i int) []byte {
	start := 0
	if i > 0 {
		start = u.ends[i-1]
	}
	return u.buf[start:u.ends[i]:u.ends[i]]
}

// packetize fills u with nalus' payloads. The payloads are those of
// gortsplib's rtph264.Encoder byte for byte (TestPacketizeMatchesGortsplib):
// consecutive NAL units that fit together in maxPayload go in one STAP-A
// (5.7.1), a unit alone that fits goes as a single NAL unit packet (5.6),
// and a larger one is cut into FU-As (5.8).
func (u *rtpUnit) packetize(nalus [][]byte) {
	size := 0
	for _, n := range nalus {
		size += len(n) + 3 + 2*(len(n)/(maxPayload-2)+1)
	}
	if cap(u.buf) < size {
		u.buf = make([]byte, 0, size)
	}
	u.buf, u.ends = u.buf[:0], u.ends[:0]
	start := 0 // first NAL unit of the batch being gathered
	batch := 1 // its aggregated size: the STAP-A header, then size and unit for each
	for i, n := range nalus {
		if i > start && batch+2+len(n) > maxPayload {
			u.batch(nalus[start:i])
			start, batch = i, 1
		}
		batch += 2 + len(n)
	}
	if start < len(nalus) {
		u.batch(nalus[start:])
	}
}

func (u *rtpUnit) batch(nalus [][]byte) {
	if len(nalus) > 1 {
		u.buf = append(u.buf, typeSTAPA)
		for _, n := range nalus {
			u.buf = append(u.buf, byte(len(n)>>8), byte(len(n)))
			u.buf = append(u.buf, n...)
		}
		u.ends = append(u.ends, len(u.buf))
		return
	}
	n := nalus[0]
	if len(n) < maxPayload {
		u.buf = append(u.buf, n...)
		u.ends = append(u.ends, len(u.buf))
		return
	}
	indicator := n[0]&0x60 | typeFUA
	typ := n[0] & 0x1f
	rest := n[1:]
	for first := true; len(rest) > 0; first = false {
		k := min(len(rest), maxPayload-2)
		header := typ
		if first {
			header |= 0x80
		}
		if k == len(rest) {
			header |= 0x40
		}
		u.buf = append(u.buf, indicator, header)
		u.buf = append(u.buf, rest[:k]...)
		u.ends = append(u.ends, len(u.buf))
		rest = rest[k:]
	}
}

// cacheUnits is how many recent units a feed keeps packetised: a second
// at 30 fps, so that viewers a few frames apart, and a joining viewer's
// catch-up burst, find them made.
const cacheUnits = 32

// unitCache packetises each access unit of a feed once, for every viewer.
// Viewers at the live edge ask for the same unit within microseconds of
// one another; the first one makes it. A unit is never modified once
// made, and a slot is refilled with a new one, not overwritten, so a
// viewer still writing an older unit is not disturbed.
type unitCache struct {
	mu    sync.Mutex
	slots [cacheUnits]*rtpUnit
}

// get returns f's packetisation.
func (c *unitCache) get(f hub.Frame) *rtpUnit {
	slot := &c.slots[f.Seq%cacheUnits]
	c.mu.Lock()
	defer c.mu.Unlock()
	if u := *slot; u != nil && u.au == f.AccessUnit {
		return u
	}
	u := &rtpUnit{au: f.AccessUnit}
	u.packetize(f.NALUs)
	*slot = u
	return u
}
