package webrtc

import (
	"bytes"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

func nal(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x60 | typ
	for i := 1; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// depacketize reassembles NAL units from RFC 6184 payloads (single NAL
// unit and FU-A only, as packetize makes).
func depacketize(t *testing.T, pkts []packet) [][]byte {
	t.Helper()
	var out [][]byte
	var fu []byte
	for _, p := range pkts {
		if len(p.payload) > maxPayload {
			t.Fatalf("payload of %d bytes, max %d", len(p.payload), maxPayload)
		}
		switch p.payload[0] & 0x1f {
		case 28:
			h := p.payload[1]
			if h&0x80 != 0 {
				fu = []byte{p.payload[0]&0xe0 | h&0x1f}
			}
			fu = append(fu, p.payload[2:]...)
			if h&0x40 != 0 {
				out = append(out, fu)
				fu = nil
			}
		default:
			out = append(out, p.payload)
		}
	}
	return out
}

func TestPacketize(t *testing.T) {
	cases := []struct {
		name  string
		nalus [][]byte
		want  int // packets
	}{
		{"small P", [][]byte{nal(6, 30), nal(1, 500)}, 2},
		{"exact fit", [][]byte{nal(1, maxPayload)}, 1},
		{"one over", [][]byte{nal(1, maxPayload+1)}, 2},
		{"keyframe", [][]byte{nal(7, 12), nal(8, 4), nal(6, 30), nal(5, 40000)}, 3 + (40000-1+maxPayload-3)/(maxPayload-2)},
		{"aud and filler dropped", [][]byte{nal(9, 2), nal(1, 100), nal(12, 50)}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			au := &h264.AccessUnit{NALUs: c.nalus, Received: time.Unix(1700000000, 123456000)}
			f := packetize(au)
			if len(f.pkts) != c.want {
				t.Fatalf("%d packets, want %d", len(f.pkts), c.want)
			}
			for i, p := range f.pkts {
				if p.marker != (i == len(f.pkts)-1) {
					t.Errorf("packet %d marker %v", i, p.marker)
				}
			}
			var want [][]byte
			for _, n := range c.nalus {
				if !skipNAL(n) {
					want = append(want, n)
				}
			}
			got := depacketize(t, f.pkts)
			if len(got) != len(want) {
				t.Fatalf("%d NAL units back, want %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("NAL unit %d differs", i)
				}
			}
			if f.ts != rtpTime(au.Received) {
				t.Errorf("timestamp %d", f.ts)
			}
		})
	}
}

func TestRTPTime(t *testing.T) {
	// 1 s is 90000 ticks, and the clock wraps as a uint32 of µs*9/100.
	a := time.Unix(1700000000, 0)
	if d := rtpTime(a.Add(time.Second)) - rtpTime(a); d != 90000 {
		t.Errorf("one second is %d ticks", d)
	}
	if got, want := rtpTime(a), uint32(a.UnixMicro()*9/100); got != want {
		t.Errorf("rtpTime = %d, want %d", got, want)
	}
}
