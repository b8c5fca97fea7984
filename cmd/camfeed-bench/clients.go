package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/h264"
)

// collector gathers what every viewer saw while recording is on.
type collector struct {
	recording atomic.Bool
	bytes     atomic.Uint64
	units     atomic.Uint64
	errors    atomic.Uint64

	mu  sync.Mutex
	lat []time.Duration
}

// unit records one access unit whose capture time code was seen at now.
func (c *collector) unit(captured, now time.Time) {
	if !c.recording.Load() {
		return
	}
	c.units.Add(1)
	c.mu.Lock()
	c.lat = append(c.lat, now.Sub(captured))
	c.mu.Unlock()
}

func (c *collector) got(n int) {
	if c.recording.Load() {
		c.bytes.Add(uint64(n))
	}
}

// scanner finds the capture time code SEIs (docs/TIMECODE.md) in a byte
// stream of any framing: Annex-B, RTP payloads, fMP4 fragments. It keeps
// the tail of the last chunk, so a time code cut across two reads is
// found too.
type scanner struct {
	carry []byte
	c     *collector
}

const (
	seiTail  = 48                      // more than a time code SEI with emulation prevention
	seiWhole = len(h264.TimeUUID) + 10 // UUID, kind, time: enough to parse
)

func (s *scanner) scan(b []byte, now time.Time) {
	s.c.got(len(b))
	if len(s.carry) > 0 {
		joined := append(s.carry, b[:min(len(b), seiTail)]...)
		s.find(joined, now, len(s.carry))
		s.carry = s.carry[:0]
	}
	s.find(b, now, 0)
	s.carry = append(s.carry[:0], b[max(0, len(b)-seiTail):]...)
}

// find reports the time codes in b. With carry > 0, b is the previous
// chunk's tail (carry bytes) and the start of the new one, and only the
// time codes that the previous chunk cut off are reported.
func (s *scanner) find(b []byte, now time.Time, carry int) {
	off := 0
	for {
		i := bytes.Index(b[off:], h264.TimeUUID[:])
		if i < 0 {
			return
		}
		i += off
		off = i + 1
		if i < 3 {
			continue
		}
		if carry > 0 && (i >= carry || carry-i >= seiWhole) {
			continue // not cut by the previous chunk: found there, or in the new one
		}
		end := min(len(b), i+len(h264.TimeUUID)+16)
		if end-i < seiWhole {
			continue // cut: the carry finds it with the next chunk
		}
		kind, t, err := h264.ParseTimeSEI(b[i-3 : end])
		if err == nil && kind == h264.TimeCapture {
			s.c.unit(t, now)
		}
	}
}

// viewer is one client of one protocol. run returns when ctx ends or the
// stream fails.
type viewer func(ctx context.Context, s *server, c *collector) error

var viewers = map[string]viewer{
	"http":         httpViewer,
	"tcp":          tcpViewer,
	"rtsp-tcp":     rtspViewer(gortsplib.ProtocolTCP, nil),
	"rtsp-udp":     rtspViewer(gortsplib.ProtocolUDP, nil),
	"rtsp-udp-gro": rtspViewer(gortsplib.ProtocolUDP, listenGRO),
	"mse":          mseViewer,
	"webrtc":       webrtcViewer,
}

func readAll(ctx context.Context, r io.Reader, c *collector) error {
	sc := &scanner{c: c}
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sc.scan(buf[:n], time.Now())
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}

func httpViewer(ctx context.Context, s *server, c *collector) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.http+"/stream.h264", nil)
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /stream.h264: %s", res.Status)
	}
	return readAll(ctx, res.Body, c)
}

func tcpViewer(ctx context.Context, s *server, c *collector) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.tcp)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	return readAll(ctx, conn, c)
}

// rtspViewer is gortsplib's client over proto; listen, if not nil, opens
// its UDP sockets (listenGRO).
func rtspViewer(proto gortsplib.Protocol, listen func(network, address string) (net.PacketConn, error)) viewer {
	return func(ctx context.Context, s *server, c *collector) error {
		u, err := base.ParseURL("rtsp://" + s.rtsp + "/cam")
		if err != nil {
			return err
		}
		cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ListenPacket: listen}
		if err := cl.Start(); err != nil {
			return err
		}
		defer cl.Close()
		desc, _, err := cl.Describe(u)
		if err != nil {
			return err
		}
		var forma *format.H264
		medi := desc.FindFormat(&forma)
		if medi == nil {
			return fmt.Errorf("no H.264 in the description")
		}
		if _, err := cl.Setup(desc.BaseURL, medi, 0, 0); err != nil {
			return err
		}
		sc := &scanner{c: c}
		cl.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) { sc.scan(pkt.Payload, time.Now()) })
		if _, err := cl.Play(nil); err != nil {
			return err
		}
		errc := make(chan error, 1)
		go func() { errc <- cl.Wait() }()
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		}
	}
}

func mseViewer(ctx context.Context, s *server, c *collector) error {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+s.http+"/cam/ws", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	sc := &scanner{c: c}
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		sc.scan(b, time.Now())
	}
}

var webrtcAPI = func() *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		panic(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
}()

// webrtcViewer is a WHEP client (pion) that reads the track's RTP.
func webrtcViewer(ctx context.Context, s *server, c *collector) error {
	pc, err := webrtcAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return err
	}
	sc := &scanner{c: c}
	failed := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			once.Do(func() { close(failed) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1600)
		var p rtp.Packet
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) == nil {
				sc.scan(p.Payload, time.Now())
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.http+"/cam/whep", strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("WHEP: %s: %s", res.Status, bytes.TrimSpace(body))
	}
	loc, _ := res.Location()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-failed:
		return fmt.Errorf("WebRTC connection failed")
	}
	if loc != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(dctx, "DELETE", loc.String(), nil)
		if res, err := httpClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
	return nil
}
