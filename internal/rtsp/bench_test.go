package rtsp

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// marshalWriter does per packet what gortsplib's ServerSession does before
// queueing it: marshal into a new buffer of the maximum packet size.
type marshalWriter struct{ bytes int }

func (w *marshalWriter) WritePacketRTPWithNTP(_ *description.Media, pkt *rtp.Packet, _ time.Time) error {
	buf := make([]byte, 1472)
	n, err := pkt.MarshalTo(buf)
	w.bytes += n
	return err
}

// BenchmarkViewerSend measures a viewer's per-access-unit send path:
// stamping, packetising (RFC 6184) and handing packets to the session,
// for a P picture and an IDR picture of a 1280x720 test pattern
// (about 9 KB and 80 KB).
func BenchmarkViewerSend(b *testing.B) {
	g, err := testsrc.New(testsrc.Config{Width: 1280, Height: 720, FPS: 30, Intra: 30})
	if err != nil {
		b.Fatal(err)
	}
	var idr, p *h264.AccessUnit
	parser := h264.NewParser(h264.ParserConfig{})
	for idr == nil || p == nil {
		nalus, _ := g.Next(time.Now())
		parser.WriteAU(nalus, time.Now(), func(au *h264.AccessUnit) {
			if au.Keyframe && idr == nil {
				idr = au
			} else if !au.Keyframe && p == nil {
				p = au
			}
		})
	}
	h := hub.New(hub.Config{})
	defer h.Close()
	s := New(Config{}, door.Unlimited(newTestFeeds(nil)), nil, nil, nil)
	f := &feed{s: s, name: "cam", hub: h}
	for _, tc := range []struct {
		name string
		au   *h264.AccessUnit
	}{{"P", p}, {"IDR", idr}} {
		b.Run(tc.name, func(b *testing.B) {
			w := &marshalWriter{}
			v := newViewer(s, f, nil, w, &description.Media{}, nil, "bench")
			defer v.sub.Close()
			fr := hub.Frame{AccessUnit: tc.au}
			now := time.Now()
			b.SetBytes(int64(tc.au.Size()))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				fr.Received = now.Add(time.Duration(i) * 33 * time.Millisecond)
				v.send(b.Context(), fr, fr.Received)
			}
		})
	}
}
