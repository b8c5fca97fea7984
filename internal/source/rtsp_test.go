package source_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/rtsp"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// auSink collects access units.
type auSink struct {
	mu  sync.Mutex
	aus [][][]byte
}

func (s *auSink) Write(p []byte) (int, error) { return len(p), nil }
func (s *auSink) Idle()                       {}
func (s *auSink) WriteAU(nalus [][]byte) {
	cp := make([][]byte, len(nalus))
	for i, n := range nalus {
		cp[i] = bytes.Clone(n)
	}
	s.mu.Lock()
	s.aus = append(s.aus, cp)
	s.mu.Unlock()
}

func (s *auSink) units() [][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][][]byte(nil), s.aus...)
}

func types(au [][]byte) []h264.NALUType {
	var t []h264.NALUType
	for _, n := range au {
		t = append(t, h264.TypeOf(n))
	}
	return t
}

func isKey(au [][]byte) bool {
	for _, n := range au {
		if h264.TypeOf(n) == h264.NALUTypeIDR {
			return true
		}
	}
	return false
}

type feeds map[string]*hub.Hub

func (f feeds) Hub(name string) (*hub.Hub, bool) { h, ok := f[name]; return h, ok }
func (f feeds) Names() []string                  { return nil }

// camera starts camfeed's own RTSP server with the test pattern, as a
// stand-in for an IP camera.
func camera(t *testing.T, transports []string) (string, *hub.Hub) {
	t.Helper()
	h := hub.New(hub.Config{})
	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 15})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p := h264.NewParser(h264.ParserConfig{})
	go func() {
		defer close(done)
		_ = g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
			p.WriteAU(nalus, time.Now(), h.Publish)
			return nil
		})
	}()
	s := rtsp.New(rtsp.Config{Addr: "127.0.0.1:0", UDPRTPAddr: "127.0.0.1:0", Transports: transports}, door.Unlimited(feeds{"cam": h}), nil, nil, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		cancel()
		<-done
		h.Close()
	})
	for h.Params().Gen == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	return "rtsp://" + s.Addr().String() + "/cam", h
}

func runFor(t *testing.T, src source.Source, d time.Duration) (*auSink, error) {
	t.Helper()
	sink := &auSink{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := src.Run(ctx, sink)
	return sink, err
}

func TestRTSPSource(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transports []string
	}{
		{"udp", []string{rtsp.TransportUDP, rtsp.TransportTCP}},
		{"tcp fallback", []string{rtsp.TransportTCP}}, // the camera refuses UDP: 461, then TCP
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := camera(t, tc.transports)
			sink, err := runFor(t, source.NewRTSP(u, nil), 1500*time.Millisecond)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run: %v, want the context's error", err)
			}
			aus := sink.units()
			if len(aus) < 20 {
				t.Fatalf("%d access units in 1.5 s", len(aus))
			}
			if got := types(aus[0]); !isKey(aus[0]) || got[0] != h264.NALUTypeSPS || got[1] != h264.NALUTypePPS {
				t.Errorf("first access unit %v, want SPS, PPS, ..., IDR", got)
			}
		})
	}
}

func TestRTSPSourceString(t *testing.T) {
	if got := source.NewRTSP("rtsp://admin:hunter2@10.0.0.2:554/stream1", nil).String(); got != "rtsp://admin:xxxxx@10.0.0.2:554/stream1" {
		t.Errorf("String() = %q", got)
	}
}

func TestRTSPSourceEnds(t *testing.T) {
	u, h := camera(t, []string{rtsp.TransportTCP})
	go func() {
		time.Sleep(500 * time.Millisecond)
		h.Close() // the feed ends: the server ends its sessions
	}()
	start := time.Now()
	_, err := runFor(t, source.NewRTSP(u, nil), 10*time.Second)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Run returned %v after %v, want an error soon after the server ended the session", err, time.Since(start))
	}
	if _, err := runFor(t, source.NewRTSP("rtsp://127.0.0.1:1/cam", nil), 5*time.Second); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Run against a closed port: %v", err)
	}
}

// TestRTSPSourceCancel: a cancel while the camera does not answer ends Run
// at once, with the context's error.
func TestRTSPSourceCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, then say nothing
		}
	}()
	start := time.Now()
	_, err = runFor(t, source.NewRTSP("rtsp://"+ln.Addr().String()+"/cam", nil), 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("Run returned %v after %v", err, time.Since(start))
	}
}

// otherCamera is a gortsplib server that offers one format and, for
// H.264, sends IDR pictures without in-band SPS/PPS (as some cameras do,
// having put them in the SDP).
type otherCamera struct {
	s      *gortsplib.Server
	stream *gortsplib.ServerStream
}

func (c *otherCamera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *otherCamera) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *otherCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func startOtherCamera(t *testing.T, f format.Format) (string, *gortsplib.ServerStream, *description.Media) {
	t.Helper()
	c := &otherCamera{}
	c.s = &gortsplib.Server{Handler: c, RTSPAddress: "127.0.0.1:0"}
	if err := c.s.Start(); err != nil {
		t.Fatal(err)
	}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
	c.stream = &gortsplib.ServerStream{Server: c.s, Desc: &description.Session{Medias: []*description.Media{medi}}}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stream.Close()
		c.s.Close()
	})
	return "rtsp://" + c.s.NetListener().Addr().String() + "/x", c.stream, medi
}

func TestRTSPSourceNotH264(t *testing.T) {
	u, _, _ := startOtherCamera(t, &format.MJPEG{})
	_, err := runFor(t, source.NewRTSP(u, nil), 5*time.Second)
	if !errors.Is(err, source.ErrNotH264) {
		t.Fatalf("Run: %v, want ErrNotH264", err)
	}
	want := "rtsp " + u + ": offers no H.264 video (it offers M-JPEG); camfeed needs H.264"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
}

func TestRTSPSourceParamsInSDP(t *testing.T) {
	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 5})
	if err != nil {
		t.Fatal(err)
	}
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: g.SPS(), PPS: g.PPS()}
	u, stream, medi := startOtherCamera(t, forma)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
		_ = enc.Init()
		var ts uint32
		_ = g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
			var vcl [][]byte
			for _, n := range nalus {
				if t := h264.TypeOf(n); t != h264.NALUTypeSPS && t != h264.NALUTypePPS {
					vcl = append(vcl, n) // parameter sets only in the SDP
				}
			}
			pkts, _ := enc.Encode(vcl)
			for _, p := range pkts {
				p.Timestamp = ts
				_ = stream.WritePacketRTP(medi, p)
			}
			ts += 3000
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	sink, _ := runFor(t, source.NewRTSP(u, nil), time.Second)
	var keys int
	for _, au := range sink.units() {
		if isKey(au) {
			keys++
			if got := types(au); got[0] != h264.NALUTypeSPS || got[1] != h264.NALUTypePPS || !bytes.Equal(au[0], g.SPS()) {
				t.Errorf("keyframe %v lacks the SDP's parameter sets", got)
			}
		}
	}
	if keys == 0 {
		t.Error("no keyframe")
	}
}

// TestRTPH264 drives the depacketizer packet by packet.
func TestRTPH264(t *testing.T) {
	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 4})
	if err != nil {
		t.Fatal(err)
	}
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 400}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	// 12 pictures: IDR P P P IDR P P P IDR P P P, each fragmented.
	var pics [][]*rtp.Packet
	for i := range 12 {
		nalus, _ := g.Next(time.Now())
		pkts, err := enc.Encode(nalus)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3000)
		}
		pics = append(pics, pkts)
	}
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	for _, tc := range []struct {
		name string
		feed func(d *source.RTPH264)
		want []bool // keyframe flags of what reaches the sink
	}{
		{"whole stream", func(d *source.RTPH264) {
			for _, p := range pics {
				for _, pkt := range p {
					d.Packet(pkt)
				}
			}
		}, []bool{true, false, false, false, true, false, false, false, true, false, false, false}},
		{"joins mid-GOP: waits for a keyframe", func(d *source.RTPH264) {
			for _, p := range pics[2:] {
				for _, pkt := range p {
					d.Packet(pkt)
				}
			}
		}, []bool{true, false, false, false, true, false, false, false}},
		{"a packet lost mid-picture: resumes at the next keyframe", func(d *source.RTPH264) {
			for i, p := range pics {
				for j, pkt := range p {
					if i == 5 && j == 1 {
						continue
					}
					d.Packet(pkt)
				}
			}
		}, []bool{true, false, false, false, true, true, false, false, false}},
		{"reported loss: resumes at the next keyframe", func(d *source.RTPH264) {
			for i, p := range pics {
				if i == 6 {
					d.Lost()
				}
				for _, pkt := range p {
					d.Packet(pkt)
				}
			}
		}, []bool{true, false, false, false, true, false, true, false, false, false}},
		{"hang-up mid-picture: nothing of it arrives", func(d *source.RTPH264) {
			for i, p := range pics[:3] {
				if i == 2 {
					p = p[:len(p)/2]
				}
				for _, pkt := range p {
					d.Packet(pkt)
				}
			}
			d.Stop()
			for _, pkt := range pics[3] {
				d.Packet(pkt)
			}
		}, []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &auSink{}
			d, err := source.NewRTPH264(forma, sink)
			if err != nil {
				t.Fatal(err)
			}
			tc.feed(d)
			var got []bool
			for _, au := range sink.units() {
				got = append(got, isKey(au))
			}
			if !slicesEqual(got, tc.want) {
				t.Errorf("keyframes of the units out: %v, want %v", got, tc.want)
			}
			if n, _ := d.Stats(); int(n) != len(tc.want) {
				t.Errorf("Stats: %d units", n)
			}
		})
	}
}

func slicesEqual(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
