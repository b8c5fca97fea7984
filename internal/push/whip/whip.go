package whip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/pushnet"
	"github.com/camfeed/camfeed/internal/webrtc/congestion"
)

// Errors a caller can branch on; each comes wrapped with the endpoint's
// name and details in words.
var (
	// ErrRefused: the server refused the token (HTTP 401 or 403). A retry
	// with the same token will be refused again, so retry slowly.
	ErrRefused = errors.New("the server refused the token")
	// ErrHTTP: the server answered the offer with another error status.
	ErrHTTP = errors.New("the server refused the offer")
	// ErrNoConnection: the offer was answered but no media path came up
	// (ICE or DTLS) within the timeout.
	ErrNoConnection = errors.New("no connection")
	// ErrGone: the connection ended while pushing.
	ErrGone = errors.New("the connection ended")
)

// DefaultTimeout is Options.Timeout when zero.
const DefaultTimeout = pushnet.DefaultTimeout

// mtu keeps RTP packets, with SRTP's tag, under a 1200-byte UDP payload:
// safe on any path without path MTU discovery.
const mtu = 1200

// keyAge is how old a keyframe may be when its last packet leaves, on
// an uplink too short for the stream (which then gets keyframes only,
// paced at the rate it delivers).
const keyAge = time.Second

// maxAnswer bounds the SDP answer read from the server.
const maxAnswer = 64 << 10

// Options tune a push (pushnet.Options, the same for every protocol).
type Options = pushnet.Options

// Writer pushes one feed to one WHIP endpoint. WriteUnit is called from
// one goroutine; Close may be called from any, once or more.
type Writer struct {
	t       target
	log     *slog.Logger
	timeout time.Duration
	client  *http.Client
	session *url.URL // the Location to DELETE on Close; nil when the server gave none

	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	link  *congestion.Link // the uplink, judged from the server's RTCP
	rtx   rtx
	ssrc  uint32
	// needKey: a unit was not sent (the link is short, or it changed
	// mode): nothing but a keyframe goes next.
	needKey bool
	pace    *time.Timer
	pay     codecs.H264Payloader
	pkt     rtp.Packet
	seq     uint16
	tsBase  uint32

	wg        sync.WaitGroup // the RTCP reader
	connected chan struct{}
	ended     chan struct{} // closed when the connection failed or closed
	mu        sync.Mutex
	gone      error
	closing   bool // Close was called: a closed connection is ours
	closeOnce sync.Once
	closeErr  error
}

// Dial offers a send-only H.264 track to the WHIP endpoint that target
// names (RFC 9725: one POST of a complete offer, no trickle ICE), and
// returns once media can flow, within about twice opt.Timeout (the HTTP
// exchange, then ICE and DTLS), or when ctx ends.
func Dial(ctx context.Context, target *url.URL, params hub.Params, opt Options) (*Writer, error) {
	t, err := parseTarget(target, opt.Token)
	if err != nil {
		return nil, err
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{
		t: t, log: opt.Log, timeout: opt.Timeout,
		client: &http.Client{Timeout: opt.Timeout},
		seq:    uint16(rand.Uint32()), tsBase: rand.Uint32(), // RFC 3550 §5.1
		connected: make(chan struct{}), ended: make(chan struct{}),
		link: congestion.New(time.Now(), keyAge),
	}
	api, err := newAPI(t, params, opt.Timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	if w.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	if err := w.negotiate(ctx, params); err != nil {
		w.pc.Close()
		w.wg.Wait()
		w.hangUp()
		return nil, err
	}
	return w, nil
}

// newAPI builds the pion API for one push: H.264 of the feed's own
// profile, packetization-mode=1; sender reports sent (NACKs are answered
// by the Writer, within a budget);
// ICE timeouts that notice a dead peer within timeout. A server on this
// machine is reached over loopback only (pion leaves loopback out by
// default); mDNS candidates are never offered, since a WHIP server is
// never on the local link by name.
func newAPI(t target, params hub.Params, timeout time.Duration) (*webrtc.API, error) {
	plid := params.Info.ProfileLevelID()
	if params.Info.ProfileIDC == 0 {
		plid = "42e01f" // no SPS parsed yet: offer Constrained Baseline, which every server takes
	}
	m := &webrtc.MediaEngine{}
	err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
			RTCPFeedback: []webrtc.RTCPFeedback{
				{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
			},
		},
		PayloadType: 102,
	}, webrtc.RTPCodecTypeVideo)
	if err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(timeout/2, timeout/2, timeout/5)
	if t.loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// negotiate adds the track, posts the offer, applies the answer and
// waits for the connection.
func (w *Writer) negotiate(ctx context.Context, params hub.Params) error {
	var err error
	w.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "camfeed")
	if err != nil {
		return fmt.Errorf("%s: %w", w.t, err)
	}
	tr, err := w.pc.AddTransceiverFromTrack(w.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("%s: %w", w.t, err)
	}
	if enc := tr.Sender().GetParameters().Encodings; len(enc) > 0 {
		w.ssrc = uint32(enc[0].SSRC)
	}
	w.wg.Go(func() { w.readRTCP(tr.Sender()) })
	w.pc.OnConnectionStateChange(w.stateChanged)
	offer, err := w.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("%s: %w", w.t, err)
	}
	gathered := webrtc.GatheringCompletePromise(w.pc)
	if err := w.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("%s: %w", w.t, err)
	}
	// Non-trickle: the offer goes out with every candidate in it, so
	// servers that do not support PATCH (most) get them all.
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", w.t, ctx.Err())
	case <-time.After(w.timeout):
		return fmt.Errorf("%s: %w: gathering ICE candidates took over %v", w.t, ErrNoConnection, w.timeout)
	}
	answer, err := w.post(ctx, w.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	if err := w.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%s: the server's answer cannot be used: %w", w.t, err)
	}
	select {
	case <-w.connected:
	case <-w.ended:
		return fmt.Errorf("%s: %w: the media path (ICE or DTLS) failed; is UDP blocked?", w.t, ErrNoConnection)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", w.t, ctx.Err())
	case <-time.After(w.timeout):
		return fmt.Errorf("%s: %w in %v: no media path (ICE or DTLS) to the server; is UDP blocked?", w.t, ErrNoConnection, w.timeout)
	}
	w.log.Debug("whip: connected", "width", params.Info.Width, "height", params.Info.Height, "session", w.session != nil)
	return nil
}

func (w *Writer) stateChanged(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		select {
		case <-w.connected:
		default:
			close(w.connected)
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gone != nil {
			return
		}
		switch {
		case s == webrtc.PeerConnectionStateFailed:
			w.gone = fmt.Errorf("%s: %w: the server stopped answering", w.t, ErrGone)
		case w.closing:
			w.gone = fmt.Errorf("%s: closed", w.t)
		default:
			w.gone = fmt.Errorf("%s: %w: the server closed it", w.t, ErrGone)
		}
		close(w.ended)
	}
}

func (w *Writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}

// post sends the offer and returns the answer, keeping the session's
// Location for Close.
func (w *Writer) post(ctx context.Context, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.t.endpoint.String(), strings.NewReader(offer))
	if err != nil {
		return "", fmt.Errorf("%s: %w", w.t, err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	w.authorize(req)
	res, err := w.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %s", w.t, httpFailure(err))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("%s: reading the answer: %s", w.t, httpFailure(err))
	}
	switch {
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		if w.t.token == "" {
			return "", fmt.Errorf("%s: %w (HTTP %d): it wants one: add ?token= or the token setting", w.t, ErrRefused, res.StatusCode)
		}
		return "", fmt.Errorf("%s: %w (HTTP %d)", w.t, ErrRefused, res.StatusCode)
	case res.StatusCode == http.StatusNotFound:
		return "", fmt.Errorf("%s: %w: no such endpoint (HTTP 404)", w.t, ErrHTTP)
	case res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s: %w: HTTP %d %s", w.t, ErrHTTP, res.StatusCode, http.StatusText(res.StatusCode))
	}
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("v=0")) {
		return "", fmt.Errorf("%s: %w: the answer is not SDP", w.t, ErrHTTP)
	}
	if loc, err := res.Location(); err == nil {
		w.session = loc
	} else {
		w.log.Debug("whip: the server gave no session URL: nothing to DELETE on close")
	}
	return string(body), nil
}

// authorize adds the bearer token to a request to the endpoint's own
// host, never elsewhere or over a weaker scheme: a session URL (Location)
// may name any host, and the token is not for a third party.
func (w *Writer) authorize(req *http.Request) {
	ep := w.t.endpoint
	if w.t.token == "" || req.URL.Host != ep.Host || (ep.Scheme == "https" && req.URL.Scheme != "https") {
		return
	}
	req.Header.Set("Authorization", "Bearer "+w.t.token)
}

// httpFailure words a client error without its URL, which carries the
// query string: a timeout, a refused connection, or the cause alone.
func httpFailure(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "no answer from the server in time"
		}
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "cannot reach the server: " + op.Err.Error()
	}
	return err.Error()
}

// readRTCP reads the server's RTCP until the peer connection closes: it
// must be read for the interceptors (sender reports) to work; NACKs are
// answered here (retransmit), and with the receiver reports they tell
// the link's loss and delivery rate. PLIs and FIRs are dropped: a push cannot make the camera send a
// keyframe sooner; the next one comes within a GOP.
func (w *Writer) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.TransportLayerNack:
				w.link.Nacked(w.retransmit(congestion.Seqs(pkt), now))
			case *rtcp.ReceiverReport:
				w.link.Report(pkt, w.ssrc, now)
			}
		}
	}
}

// WriteUnit sends one access unit as RTP packets (RFC 6184,
// packetization-mode=1: single NAL units, FU-A, and SPS+PPS in a STAP-A),
// stamped from pts on the 90 kHz clock. It fails once the connection has
// ended.
//
// While the server reports more loss than the uplink can bear (package
// congestion, as for WHEP viewers), WriteUnit sends keyframes only, each
// paced at the rate the uplink was seen to deliver (so it blocks for
// about the keyframe's time on the wire), and returns pushnet.ErrSkip for
// every unit it does not send: the push skips to the next keyframe, and
// what reaches the server stays decodable.
func (w *Writer) WriteUnit(au *h264.AccessUnit, pts time.Duration) error {
	if err := w.err(); err != nil {
		return err
	}
	now := time.Now()
	d := w.link.Admit(now, au.Keyframe, au.Size(), now.Sub(au.Received))
	if d.Switched {
		mode, rate, _ := w.link.State()
		w.log.Info("whip: uplink", "mode", mode.String(), "rate_kbps", int(rate/1000))
	}
	if d.NeedKey {
		w.needKey = true // the mode changed: start it at a keyframe
	}
	if !d.Send || (w.needKey && !au.Keyframe) {
		w.needKey = true
		return fmt.Errorf("%s: %w", w.t, pushnet.ErrSkip)
	}
	w.needKey = false
	payloads := w.pay.Payload(mtu, au.Data)
	ts := w.tsBase + uint32(ticks90k(pts))
	var debt time.Duration
	for i, p := range payloads {
		w.pkt.Header = rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: w.seq, Timestamp: ts}
		w.pkt.Payload = p
		w.rtx.keep(sentPacket{payload: p, at: now, ts: ts, seq: w.seq, marker: w.pkt.Marker, key: au.Keyframe})
		w.seq++
		if err := w.track.WriteRTP(&w.pkt); err != nil {
			if gone := w.err(); gone != nil {
				return gone
			}
			return fmt.Errorf("%s: %w: %v", w.t, ErrGone, err)
		}
		if d.Pace > 0 {
			// A few packets at a time at the uplink's rate, so that no
			// queue on the way drops the keyframe's tail.
			debt += time.Duration(float64(len(p)*8) / d.Pace * float64(time.Second))
			if debt >= 5*time.Millisecond {
				if err := w.sleep(debt); err != nil {
					return err
				}
				debt = 0
			}
		}
	}
	w.link.Sent(len(payloads), au.Size())
	return nil
}

// NACKed packets are resent (RFC 4585 §6.2.1), on the same SSRC, while
// fresh and within a budget, as the WHEP output does for its viewers:
// pion's own responder resends every packet asked for, and on a short
// uplink the resends crowd out the stream until nothing gets through.
const (
	histSize  = 512                    // packets that can be resent: a few seconds of a keyframe-only stream
	rtxMaxAge = 250 * time.Millisecond // older, a server's jitter buffer has given up on it
)

// sentPacket is a sent packet as it can be resent.
type sentPacket struct {
	payload []byte
	at      time.Time
	ts      uint32
	seq     uint16
	marker  bool
	key     bool // part of a keyframe
	nacked  bool // reported lost once already
	ok      bool
}

// rtx is the history of sent packets; WriteUnit adds to it, the RTCP
// reader resends from it.
type rtx struct {
	mu     sync.Mutex
	hist   [histSize]sentPacket
	window time.Time // the budget's second
	sent   int       // bytes sent in it
	resent int       // bytes resent in it
	pkt    rtp.Packet
}

func (r *rtx) keep(p sentPacket) {
	p.ok = true
	r.mu.Lock()
	r.hist[p.seq%histSize] = p
	r.sent += len(p.payload)
	r.mu.Unlock()
}

// retransmit resends what seqs ask for that is fresh, within a fifth of
// what was sent in the last second (only keyframe packets while the
// uplink gets keyframes only: resending into a short link makes it
// worse). It returns how many of seqs were reported lost for the first
// time, for the link's loss count.
func (w *Writer) retransmit(seqs []uint16, now time.Time) (lost int) {
	mode, _, _ := w.link.State()
	r := &w.rtx
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.window) > time.Second {
		r.window, r.sent, r.resent = now, 0, 0
	}
	for _, seq := range seqs {
		e := &r.hist[seq%histSize]
		if !e.ok || e.seq != seq {
			continue
		}
		if !e.nacked && now.Sub(e.at) < time.Second {
			e.nacked = true
			lost++
		}
		if now.Sub(e.at) > rtxMaxAge || (mode == congestion.Keyframes && !e.key) {
			continue
		}
		if r.resent+len(e.payload) > r.sent/5+4*mtu {
			break
		}
		r.resent += len(e.payload)
		r.pkt.Header = rtp.Header{Version: 2, Marker: e.marker, SequenceNumber: seq, Timestamp: e.ts}
		r.pkt.Payload = e.payload
		if err := w.track.WriteRTP(&r.pkt); err != nil {
			break
		}
	}
	return lost
}

// sleep waits for d, or returns why the connection ended meanwhile.
func (w *Writer) sleep(d time.Duration) error {
	if w.pace == nil {
		w.pace = time.NewTimer(d)
	} else {
		w.pace.Reset(d)
	}
	select {
	case <-w.pace.C:
		return nil
	case <-w.ended:
		return w.err()
	}
}

// ticks90k puts d on the 90 kHz clock, rounded to the nearest tick, so a
// frame period in nanoseconds (33333333 at 30 fps) gives 3000 every time.
func ticks90k(d time.Duration) int64 {
	s, r := int64(d/time.Second), int64(d%time.Second)
	return s*90000 + (r*90000+int64(time.Second)/2)/int64(time.Second)
}

// Close ends the peer connection and DELETEs the session (RFC 9725
// §4.3), so the server frees it at once rather than after its own
// timeout. The error is the DELETE's, for the log: the push is over
// either way.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closing = true
		w.mu.Unlock()
		w.pc.Close()
		w.wg.Wait()
		w.closeErr = w.hangUp()
	})
	return w.closeErr
}

// hangUp DELETEs the session, if the server gave one.
func (w *Writer) hangUp() error {
	if w.session == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.session.String(), nil)
	if err != nil {
		return fmt.Errorf("%s: ending the session: %w", w.t, err)
	}
	w.authorize(req)
	res, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: ending the session: %s", w.t, httpFailure(err))
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s: ending the session: HTTP %d %s", w.t, res.StatusCode, http.StatusText(res.StatusCode))
	}
	return nil
}
