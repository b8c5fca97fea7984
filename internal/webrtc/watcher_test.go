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
// far as the reference chain goes. It NACKs lost packets and sends
// receiver reports (pion's interceptors). Like a browser's packet buffer
// it assembles each frame on its own, as soon as all its packets are in:
// from the packet after the previous frame's marker to its own marker
// (RFC 6184 gives no other sign of a frame's start). A keyframe is
// decoded at once; any other frame only right after the frame before it
// in sequence number order was decoded, which is all a browser knows of
// H.264 references (Chromium's sequence-number reference finder). When
// frames wait for a missing one it sends a PLI, as a browser does.
//
// A browser cannot see frames the server skipped: RTP sequence numbers
// are per peer and contiguous. So the watcher checks what the browser
// would decode with frame_num (H.264 7.4.3): a picture decoded after a
// skipped reference is a corrupt picture. And a frame that comes after
// another in sequence order but is older (RTP timestamp) is one a
// browser drops, decoding the next ones without their reference.
type watcher struct {
	pc       *webrtc.PeerConnection
	resource string
	client   *http.Client

	mu      sync.Mutex
	info    h264.Info
	pkts    map[int64]*rtpPacket
	maxSeq  int64
	started bool
	done    map[int64]bool       // packets of frames assembled
	ends    map[int64]frameEnd   // frames assembled, by the sequence number of their marker
	waiting map[int64]*waitFrame // assembled, waiting for the frame before, by first sequence number
	last    int64                // end of the newest frame decoded; 0 before the first
	lastTS  uint32
	stuck   time.Time // since when complete frames wait for a missing one
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

// frameEnd is what the watcher keeps of an assembled frame.
type frameEnd struct {
	decoded bool
	fn      uint32
}

// waitFrame is an assembled P frame waiting for the frame before it.
type waitFrame struct {
	first, end int64
	ts         uint32
	fn         uint32
	captured   time.Time
	at         time.Time
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
	Malformed  int // all packets of an access unit in, but they do not make one
	Incomplete int // lost its first packets: not decodable, never shown
	Dropped    int // assembled, but never decodable: the frame before was lost
	Late       int // completed after a newer frame was decoded (a retransmission)
}

// giveUp is how long complete frames wait for a missing one before the
// watcher asks for a keyframe (NACKs are sent every 100 ms), and maxGap
// the gap that asks at once, as a browser asks for a keyframe rather than
// for hundreds of packets.
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
	wt := &watcher{pc: pc, pkts: map[int64]*rtpPacket{}, done: map[int64]bool{}, ends: map[int64]frameEnd{}, waiting: map[int64]*waitFrame{},
		gotPicture: make(chan struct{}), client: httpClientFrom(o.local)}
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
		wt.started, wt.maxSeq = true, s
	}
	if _, dup := wt.pkts[s]; dup || wt.done[s] {
		return // a retransmission that came too late, or twice
	}
	wt.maxSeq = max(wt.maxSeq, s)
	wt.pkts[s] = &rtpPacket{payload: append([]byte(nil), p.Payload...), marker: p.Marker, ts: p.Timestamp}
	wt.tryFrame(s, now)
	if n := wt.pkts[s+1]; n != nil && n.ts != p.Timestamp {
		wt.tryFrame(s+1, now) // s certifies the start of the next frame
	}
	wt.checkStuck(now)
	// Forget what is far behind.
	if len(wt.pkts)+len(wt.done) > 8000 {
		for k := range wt.pkts {
			if k < wt.maxSeq-3000 {
				delete(wt.pkts, k)
			}
		}
		for k := range wt.done {
			if k < wt.maxSeq-3000 {
				delete(wt.done, k)
			}
		}
	}
}

// tryFrame assembles the frame that packet s belongs to if all of it is in.
func (wt *watcher) tryFrame(s int64, now time.Time) {
	p := wt.pkts[s]
	if p == nil {
		return
	}
	first := s
	for {
		q := wt.pkts[first-1]
		if q == nil || q.ts != p.ts {
			break
		}
		first--
	}
	end := s
	for !wt.pkts[end].marker {
		q := wt.pkts[end+1]
		if q == nil || q.ts != p.ts {
			return // the rest is not in yet (or lost)
		}
		end++
	}
	// The start is certain after a marker or a packet of another frame;
	// after a lost packet it is assumed, as a browser does, and a frame
	// that lost its start then fails to assemble.
	_, afterFrame := wt.ends[first-1]
	certain := afterFrame || wt.pkts[first-1] != nil || wt.done[first-1]
	frame := make([]*rtpPacket, 0, end-first+1)
	for i := first; i <= end; i++ {
		frame = append(frame, wt.pkts[i])
		delete(wt.pkts, i)
		wt.done[i] = true
	}
	wt.frame(first, end, certain, frame, now)
	for k := range wt.ends {
		if k < end-5000 {
			delete(wt.ends, k)
		}
	}
}

// checkStuck asks for a keyframe when complete frames have waited too
// long for a missing one, or the gap is too large to NACK.
func (wt *watcher) checkStuck(now time.Time) {
	if len(wt.waiting) == 0 {
		wt.stuck = time.Time{}
		return
	}
	if wt.stuck.IsZero() {
		wt.stuck = now
	}
	if now.Sub(wt.stuck) >= giveUp || wt.maxSeq-wt.last > maxGap {
		wt.askKeyframe(now)
	}
}

func (wt *watcher) askKeyframe(now time.Time) {
	if now.Sub(wt.lastPLI) >= watcherPLIEvery && wt.ssrc != 0 {
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

// frame handles an assembled frame [first, end]: a keyframe is decoded
// at once, another frame when the frame before it was decoded.
func (wt *watcher) frame(first, end int64, certain bool, frame []*rtpPacket, now time.Time) {
	wt.ends[end] = frameEnd{}
	ts := frame[0].ts
	nals, err := depacketizeRTP(frame)
	if err != nil || len(nals) == 0 {
		if certain {
			wt.st.Malformed++
			wt.note(fmt.Sprintf("malformed access unit: %v", err))
		} else {
			wt.st.Incomplete++
		}
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
		if certain {
			wt.st.Malformed++
			wt.note("an access unit without a slice")
		} else {
			wt.st.Incomplete++
		}
		return
	}
	f := &waitFrame{first: first, end: end, ts: ts, fn: fn, captured: captured, at: now}
	if wt.last != 0 && end < wt.last {
		wt.st.Late++ // a newer frame was decoded meanwhile: a browser drops this one
		return
	}
	if wt.last != 0 && int32(ts-wt.lastTS) <= 0 {
		// Later in sequence, older in time: the server sent a frame older
		// than one it sent before. A browser drops it, and then decodes
		// the frames after it without their reference.
		wt.st.Corrupt++
		wt.note(fmt.Sprintf("RTP timestamp went back from %d to %d (keyframe %v)", wt.lastTS, ts, key))
		return
	}
	if key {
		// Frames waiting before the keyframe are never decoded now.
		for k, w := range wt.waiting {
			if w.end < first {
				wt.st.Dropped++
				delete(wt.waiting, k)
			}
		}
		wt.decode(f, true)
		return
	}
	wt.waiting[first] = f
	wt.release()
}

// release decodes waiting frames whose predecessor was decoded.
func (wt *watcher) release() {
	for {
		f := wt.waiting[wt.last+1]
		if f == nil || wt.last == 0 {
			return
		}
		delete(wt.waiting, f.first)
		prev := wt.ends[wt.last]
		if want := (prev.fn + 1) % (1 << wt.info.Log2MaxFrameNum); f.fn != want {
			wt.st.Corrupt++
			wt.note(fmt.Sprintf("corrupt picture: frame_num %d after %d, no loss seen", f.fn, prev.fn))
			continue
		}
		if int32(f.ts-wt.lastTS) <= 0 {
			wt.st.Corrupt++
			wt.note(fmt.Sprintf("RTP timestamp went back from %d to %d", wt.lastTS, f.ts))
			continue
		}
		wt.decode(f, false)
	}
}

func (wt *watcher) decode(f *waitFrame, key bool) {
	wt.ends[f.end] = frameEnd{decoded: true, fn: f.fn}
	wt.last, wt.lastTS = f.end, f.ts
	wt.st.Decoded++
	if key {
		wt.st.Keyframes++
	}
	wt.frames = append(wt.frames, decoded{at: f.at, captured: f.captured, key: key})
	wt.pictured.Do(func() { close(wt.gotPicture) })
	for k, w := range wt.waiting {
		if w.end < f.first {
			wt.st.Dropped++
			delete(wt.waiting, k)
		}
	}
	if !key {
		return
	}
	wt.release()
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

// watcherPLIEvery paces the watcher's picture-loss reports as a browser does
// (Chromium sends at most a few a second); it is behaviour, not a bound.
const watcherPLIEvery = 300 * time.Millisecond
