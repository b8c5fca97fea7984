package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/h264"
)

// watcher is a pion WHEP viewer that decodes the way a browser does, as
// far as the reference chain goes: it NACKs lost packets and sends
// receiver reports (pion's interceptors), assembles access units from RTP
// in sequence order, gives up on a missing packet after a while, and then
// decodes nothing but a keyframe, sending a PLI until one comes. Like a
// browser, it cannot see frames the server skipped: RTP sequence numbers
// are per peer and contiguous. So it checks what the browser would
// decode with frame_num (H.264 7.4.3): a picture decoded after a skipped
// reference is a corrupt picture.
type watcher struct {
	pc       *webrtc.PeerConnection
	resource string
	client   *http.Client

	mu      sync.Mutex
	info    h264.Info
	pkts    map[int64]*rtpPacket
	maxSeq  int64
	cursor  int64
	started bool
	gapAt   time.Time // when the packet at cursor was first seen missing
	broken  bool      // the chain is broken: decode only a keyframe
	fresh   bool      // the next frame follows a gap: its start may be lost
	prevFN  uint32
	prevTS  uint32
	lastPLI time.Time
	ssrc    uint32
	frames  []decoded
	st      watchStats
	notes   []string

	gotPicture chan struct{}
	pictured   sync.Once
	plis       atomic.Int64
}

type rtpPacket struct {
	payload []byte
	marker  bool
	ts      uint32
}

// decoded is one picture the viewer decoded.
type decoded struct {
	at, captured time.Time
	key          bool
}

func (d decoded) lag() time.Duration { return d.at.Sub(d.captured) }

// watchStats count what the viewer saw.
type watchStats struct {
	Decoded    int // pictures decodable with their references
	Keyframes  int
	Corrupt    int // a decoder would show a picture without its reference
	Malformed  int // an access unit whose packets do not fit (no loss seen)
	Incomplete int // cut by the link's loss: not decodable, never shown
	Waiting    int // complete, but after a break: not decoded until a keyframe
	GaveUp     int // missing packets given up on
}

// giveUp is how long a missing packet is waited for (NACKs are sent every
// 100 ms), and maxGap the gap that is given up at once, as a browser
// asks for a keyframe rather than thousands of packets.
const (
	giveUp = 300 * time.Millisecond
	maxGap = 300
)

type watchOptions struct {
	local net.IP // the HTTP client's address, for per-address limits
}

func httpClientFrom(local net.IP) *http.Client {
	if local == nil {
		return &http.Client{Transport: &http.Transport{}}
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// watch connects a watcher to the WHEP url.
func watch(ctx context.Context, url string, o watchOptions) (*watcher, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	wt := &watcher{pc: pc, pkts: map[int64]*rtpPacket{}, gotPicture: make(chan struct{}), client: httpClientFrom(o.local)}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wt.mu.Lock()
		wt.ssrc = uint32(tr.SSRC())
		wt.mu.Unlock()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			wt.packet(p, time.Now())
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return nil, err
	}
	<-gathered
	answer, resource, err := postOffer(ctx, wt.client, url, pc.LocalDescription().SDP)
	if err != nil {
		pc.Close()
		return nil, err
	}
	wt.resource = resource
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		pc.Close()
		return nil, err
	}
	return wt, nil
}

// errStatus is a WHEP answer other than 201.
type errStatus struct {
	code       int
	retryAfter string
	body       string
}

func (e *errStatus) Error() string { return fmt.Sprintf("WHEP: %d: %s", e.code, e.body) }

// postOffer POSTs an SDP offer and returns the answer and the session's
// resource URL.
func postOffer(ctx context.Context, c *http.Client, url, offer string) (string, string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	res, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return "", "", &errStatus{code: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), body: string(bytes.TrimSpace(body))}
	}
	loc, err := res.Location()
	if err != nil {
		return "", "", err
	}
	return string(body), loc.String(), nil
}

// deleteSession DELETEs a WHEP resource.
func deleteSession(c *http.Client, resource string) error {
	req, _ := http.NewRequest("DELETE", resource, nil)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE: %s", res.Status)
	}
	return nil
}

func (wt *watcher) close() {
	_ = deleteSession(wt.client, wt.resource)
	wt.pc.Close()
	wt.client.CloseIdleConnections()
}

// unwrap extends a 16-bit sequence number next to the highest seen.
func (wt *watcher) unwrap(seq uint16) int64 {
	if !wt.started {
		return int64(seq) + 1<<20
	}
	return wt.maxSeq + int64(int16(seq-uint16(wt.maxSeq)))
}

func (wt *watcher) packet(p *rtp.Packet, now time.Time) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	s := wt.unwrap(p.SequenceNumber)
	if !wt.started {
		wt.started, wt.cursor, wt.maxSeq, wt.fresh = true, s, s, true
		wt.broken = true
	}
	if s < wt.cursor {
		return // given up on, or a duplicate
	}
	wt.maxSeq = max(wt.maxSeq, s)
	wt.pkts[s] = &rtpPacket{payload: append([]byte(nil), p.Payload...), marker: p.Marker, ts: p.Timestamp}
	wt.advance(now)
}

// advance assembles every frame it can from cursor on, in order.
func (wt *watcher) advance(now time.Time) {
	for {
		s := wt.cursor
		for ; ; s++ {
			p := wt.pkts[s]
			if p == nil {
				break
			}
			if p.marker {
				break
			}
		}
		if p := wt.pkts[s]; p != nil {
			var frame []*rtpPacket
			for i := wt.cursor; i <= s; i++ {
				frame = append(frame, wt.pkts[i])
				delete(wt.pkts, i)
			}
			wt.cursor, wt.gapAt = s+1, time.Time{}
			wt.frame(frame, now)
			continue
		}
		if s > wt.maxSeq {
			return // the frame is not all here yet, and nothing is missing
		}
		if wt.gapAt.IsZero() {
			wt.gapAt = now
		}
		if now.Sub(wt.gapAt) < giveUp && wt.maxSeq-s < maxGap {
			return
		}
		// Give up on the missing packet: drop the frame it belongs to and
		// continue at the next packet with another timestamp.
		wt.st.GaveUp++
		var partTS uint32
		known := false
		for i := wt.cursor; i < s; i++ {
			partTS, known = wt.pkts[i].ts, true
			delete(wt.pkts, i)
		}
		next := s + 1
		for ; next <= wt.maxSeq; next++ {
			if p := wt.pkts[next]; p != nil && (!known || p.ts != partTS) {
				break
			}
			delete(wt.pkts, next)
		}
		wt.cursor, wt.gapAt, wt.fresh = next, time.Time{}, true
		wt.breakChain(now)
		if next > wt.maxSeq {
			return
		}
	}
}

func (wt *watcher) breakChain(now time.Time) {
	wt.broken = true
	if now.Sub(wt.lastPLI) >= 300*time.Millisecond && wt.ssrc != 0 {
		wt.lastPLI = now
		wt.plis.Add(1)
		ssrc := wt.ssrc
		go func() { _ = wt.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) }()
	}
}

var errFUA = errors.New("FU-A fragments out of order")

// depacketizeRTP returns an RTP frame's NAL units (RFC 6184 §5.6, §5.8).
func depacketizeRTP(frame []*rtpPacket) ([][]byte, error) {
	var nals [][]byte
	var fu []byte
	for _, p := range frame {
		if len(p.payload) < 1 {
			return nil, errors.New("empty payload")
		}
		switch typ := p.payload[0] & 0x1f; {
		case typ >= 1 && typ <= 23:
			if fu != nil {
				return nil, errFUA
			}
			nals = append(nals, p.payload)
		case typ == 28:
			if len(p.payload) < 2 {
				return nil, errFUA
			}
			start, end := p.payload[1]&0x80 != 0, p.payload[1]&0x40 != 0
			switch {
			case start && fu == nil:
				fu = []byte{p.payload[0]&0xe0 | p.payload[1]&0x1f}
			case start || fu == nil:
				return nil, errFUA
			}
			fu = append(fu, p.payload[2:]...)
			if end {
				nals, fu = append(nals, fu), nil
			}
		default:
			return nil, fmt.Errorf("NAL unit type %d not expected", typ)
		}
	}
	if fu != nil {
		return nil, errFUA
	}
	return nals, nil
}

// frame decodes one assembled frame, as far as the reference chain goes.
func (wt *watcher) frame(frame []*rtpPacket, now time.Time) {
	afterGap := wt.fresh
	wt.fresh = false
	ts := frame[0].ts
	for _, p := range frame {
		if p.ts != ts {
			wt.st.Malformed++
			wt.note("packets of two timestamps in one frame")
			return
		}
	}
	nals, err := depacketizeRTP(frame)
	if err != nil || len(nals) == 0 {
		if afterGap {
			wt.st.Incomplete++
		} else {
			wt.st.Malformed++
			wt.note(fmt.Sprintf("malformed access unit: %v", err))
		}
		wt.breakChain(now)
		return
	}
	var (
		key, haveFN bool
		fn          uint32
		captured    time.Time
	)
	for _, n := range nals {
		switch h264.TypeOf(n) {
		case h264.NALUTypeSPS:
			if info, err := h264.ParseSPS(n); err == nil {
				wt.info = info
			}
		case h264.NALUTypeSEI:
			if _, t, err := h264.ParseTimeSEI(n); err == nil {
				captured = t
			}
		case h264.NALUTypeIDR:
			key = true
			fallthrough
		case h264.NALUTypeNonIDR:
			fn, haveFN = h264.FrameNum(n, wt.info)
		}
	}
	if !haveFN {
		if afterGap {
			wt.st.Incomplete++
		} else {
			wt.st.Malformed++
			wt.note("an access unit without a slice")
		}
		wt.breakChain(now)
		return
	}
	if !key && wt.broken {
		wt.st.Waiting++
		wt.breakChain(now)
		return
	}
	if wt.st.Decoded > 0 && int32(ts-wt.prevTS) <= 0 {
		// A browser drops a frame older than one it decoded, and then
		// decodes the next ones without their reference.
		wt.st.Corrupt++
		wt.note(fmt.Sprintf("RTP timestamp went back from %d to %d (keyframe %v)", wt.prevTS, ts, key))
		wt.breakChain(now)
		return
	}
	if !key {
		if want := (wt.prevFN + 1) % (1 << wt.info.Log2MaxFrameNum); fn != want {
			wt.st.Corrupt++
			wt.note(fmt.Sprintf("corrupt picture: frame_num %d after %d, no loss seen", fn, wt.prevFN))
			wt.breakChain(now)
			return
		}
	}
	wt.broken, wt.prevFN, wt.prevTS = false, fn, ts
	wt.st.Decoded++
	if key {
		wt.st.Keyframes++
	}
	wt.frames = append(wt.frames, decoded{at: now, captured: captured, key: key})
	wt.pictured.Do(func() { close(wt.gotPicture) })
}

func (wt *watcher) note(s string) {
	if len(wt.notes) < 20 {
		wt.notes = append(wt.notes, s)
	}
}

// stats returns the counters and the pictures decoded so far.
func (wt *watcher) stats() (watchStats, []decoded, []string) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return wt.st, append([]decoded(nil), wt.frames...), append([]string(nil), wt.notes...)
}

// sendPLI asks the server for a keyframe, as a browser does.
func (wt *watcher) sendPLI() error {
	wt.mu.Lock()
	ssrc := wt.ssrc
	wt.mu.Unlock()
	return wt.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// waitPicture waits for the first decoded picture.
func (wt *watcher) waitPicture(ctx context.Context) error {
	select {
	case <-wt.gotPicture:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
