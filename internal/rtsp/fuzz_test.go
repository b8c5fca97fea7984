package rtsp

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// FuzzPublishRTP feeds what a publisher (or a camera) sends, RTP packets
// of any content, to the depacketizer that publish and pull share. It
// must not panic, and whatever it passes on must start at a keyframe.
// The input is a run of packets, each behind a 2-byte length.
func FuzzPublishRTP(f *testing.F) {
	g, err := testsrc.New(testsrc.Config{Width: 64, Height: 64, FPS: 30, Intra: 3})
	if err != nil {
		f.Fatal(err)
	}
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 200}
	if err := enc.Init(); err != nil {
		f.Fatal(err)
	}
	var seed []byte
	for i := range 5 {
		nalus, _ := g.Next(time.Now())
		pkts, _ := enc.Encode(nalus)
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3000)
			b, _ := p.Marshal()
			seed = binary.BigEndian.AppendUint16(seed, uint16(len(b)))
			seed = append(seed, b...)
		}
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{0, 13, 0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x7c})
	f.Fuzz(func(t *testing.T, in []byte) {
		sink := &checkSink{t: t}
		d, err := source.NewRTPH264(&format.H264{PayloadTyp: 96, PacketizationMode: 1}, sink)
		if err != nil {
			t.Fatal(err)
		}
		for len(in) >= 2 {
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			var p rtp.Packet
			if p.Unmarshal(in[:n]) == nil {
				d.Packet(&p)
			}
			in = in[n:]
		}
	})
}

type checkSink struct {
	t     *testing.T
	units int
}

func (s *checkSink) Write(p []byte) (int, error) { return len(p), nil }
func (s *checkSink) Idle()                       {}
func (s *checkSink) WriteAU(nalus [][]byte) {
	if len(nalus) == 0 {
		s.t.Fatal("an empty access unit")
	}
	if s.units == 0 {
		key := false
		for _, n := range nalus {
			if len(n) == 0 {
				s.t.Fatal("an empty NAL unit")
			}
			key = key || h264.TypeOf(n) == h264.NALUTypeIDR
		}
		if !key {
			s.t.Fatal("the first access unit passed on is not a keyframe")
		}
	}
	s.units++
}
