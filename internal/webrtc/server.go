// Package webrtc serves feeds to browsers over WebRTC with WHEP
// (draft-ietf-wish-whep): POST /{feed}/whep takes an SDP offer and
// answers, DELETE /{feed}/whep/{id} ends the session.
//
// Each feed with viewers has one broadcaster that reads the hub and
// packetises every access unit once; peers share the RTP payloads and add
// only their own headers and SRTP. Each peer judges its own link from
// RTCP and, when the link cannot carry the stream, gets keyframes only,
// paced, so a slow viewer still sees fresh decodable pictures and costs
// the others nothing.
//
// Every viewer comes in through the door (internal/door) at its POST,
// before the peer connection is built: the viewer limits apply, the
// session is accounted like any other protocol's, and it leaves when the
// peer closes, hangs up, or never connects (connectTimeout). The feed's
// join policy and lag budget (its hub config) decide where a peer starts
// and how old a frame may be when its turn comes.
//
// ICE runs on one UDP port (a UDP mux) with ICE-TCP on the same port
// number, so a firewall needs two rules and no port range. No STUN server
// is used unless configured: on a LAN the host candidates are enough, and
// behind a 1:1 NAT the public address goes in HostIPs.
package webrtc

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
)

// KeyframeRequester makes a feed's source send a keyframe soon, when it
// can (the test pattern can; rpicam-vid cannot be asked while it runs).
// The server calls it when a browser reports a lost picture (PLI or FIR)
// and when a peer resumes after a stall, at most twice a second per
// viewer; the implementation rate-limits per feed. Without it a viewer
// that lost a picture waits for the stream's next keyframe.
type KeyframeRequester interface {
	RequestKeyframe(feed string)
}

// DefaultAddr is where ICE listens by default, UDP and TCP.
const DefaultAddr = ":8189"

// MaxPeers bounds concurrent WebRTC peers per server, connected or not,
// whatever the viewer limits say: each costs goroutines and sockets.
const MaxPeers = 512

// connectTimeout releases a peer whose client never completes ICE and
// DTLS: its slot and its goroutines are back well within 5 s, so a flood
// of offers cannot hold slots that real viewers need. A browser on a LAN
// or behind a 1:1 NAT connects within a few round trips.
const connectTimeout = 4 * time.Second

// maxBuilding bounds peer connections being built at once. Building one
// (DTLS keys, ICE gathering, up to 3 s with STUN) is the expensive part
// of an offer; a flood waits here instead of growing goroutines and
// memory, and a refused offer costs a few microseconds.
const maxBuilding = 4

// buildWait is how long an offer waits for a building slot before 503.
const buildWait = 5 * time.Second

// Config configures the WebRTC output.
type Config struct {
	// Addr is the ICE address, UDP mux and ICE-TCP on the same port
	// (default ":8189"); "off" disables WebRTC.
	Addr string
	// HostIPs are addresses to announce besides the local ones: a LAN
	// address when binding a wildcard picks the wrong interface, or the
	// public address of a 1:1 NAT (port forwarding keeps the port).
	HostIPs []string
	// STUN servers, as host:port or stun:host:port. None by default.
	STUN []string
	// Keyframes, when set, is asked for a keyframe when a viewer lost its
	// picture or resumes after a stall.
	Keyframes KeyframeRequester
}

// Errors from New and Start that callers may branch on.
var (
	ErrDisabled = errors.New("webrtc: disabled")
	ErrBadIP    = errors.New("webrtc: bad host IP")
)

// Server is the WHEP endpoint and its ICE sockets.
type Server struct {
	cfg  Config
	door *door.Door
	log  *slog.Logger

	udp    net.PacketConn
	tcp    net.Listener
	udpMux ice.UDPMux
	tcpMux ice.TCPMux
	se     webrtc.SettingEngine

	// linkHook, when set (tests only), adds interceptors next to the
	// network for every peer: a throttled link.
	linkHook func(*interceptor.Registry)
	// maxPeers and connectTimeout are MaxPeers and connectTimeout, set
	// lower or higher by tests.
	maxPeers       int
	connectTimeout time.Duration
	building       chan struct{} // semaphore: peers being built

	mu       sync.Mutex
	started  bool
	closed   bool
	reserved int // peers being built plus peers in peers: ≤ maxPeers
	peers    map[string]*peer
	feedsBc  map[string]*broadcaster
	origins  []string
}

// New checks cfg and returns a server; Start opens its sockets. Viewers
// come in through d, which finds the feeds and holds the limits.
func New(cfg Config, d *door.Door, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	for _, ip := range cfg.HostIPs {
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("%w: %q is not an IP address", ErrBadIP, ip)
		}
	}
	if cfg.Addr != "off" {
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			return nil, fmt.Errorf("webrtc: address %q: %w", cfg.Addr, err)
		}
	}
	return &Server{
		cfg: cfg, door: d, log: log, maxPeers: MaxPeers, connectTimeout: connectTimeout,
		building: make(chan struct{}, maxBuilding),
		peers:    map[string]*peer{}, feedsBc: map[string]*broadcaster{},
	}, nil
}

// AllowOrigins sets which other origins may POST offers (CORS; "*" for
// any). By default only the viewer's own pages may.
func (s *Server) AllowOrigins(origins []string) {
	s.mu.Lock()
	s.origins = append([]string(nil), origins...)
	s.mu.Unlock()
}

// Addr returns the ICE port's address once started.
func (s *Server) Addr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Start opens the UDP socket and the TCP listener on the same port. With
// port 0 it picks a port free for both.
func (s *Server) Start() error {
	if s.cfg.Addr == "off" {
		return ErrDisabled
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.cfg.Addr)
	var err error
	for try := 0; try < 20; try++ {
		s.udp, err = net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("webrtc: listen udp %s: %w", s.cfg.Addr, err)
		}
		_, p, _ := net.SplitHostPort(s.udp.LocalAddr().String())
		s.tcp, err = net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			break
		}
		s.udp.Close()
		s.udp = nil
		if port != "0" {
			return fmt.Errorf("webrtc: listen tcp %s: %w", s.cfg.Addr, err)
		}
	}
	if err != nil {
		return fmt.Errorf("webrtc: no port free for both UDP and TCP: %w", err)
	}
	ip := net.ParseIP(host)
	loopback := ip != nil && ip.IsLoopback()

	s.udpMux = ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{UDPConn: s.udp})
	s.tcpMux = webrtc.NewICETCPMux(nil, s.tcp, 8)
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(s.udpMux)
	se.SetICETCPMux(s.tcpMux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(loopback)
	se.SetICETimeouts(4*time.Second, 10*time.Second, 2*time.Second)
	if len(s.cfg.HostIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.cfg.HostIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteAppend,
		}); err != nil {
			s.closeSockets()
			return fmt.Errorf("webrtc: host IPs: %w", err)
		}
	}
	s.se = se
	s.started = true
	s.log.Info("webrtc: listening", "udp", s.udp.LocalAddr().String(), "tcp", s.tcp.Addr().String())
	return nil
}

func (s *Server) closeSockets() {
	if s.udpMux != nil {
		s.udpMux.Close()
	}
	if s.tcpMux != nil {
		s.tcpMux.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
}

// Close ends every session and closes the sockets. It is safe after a
// failed Start, and more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	peers := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close("server shutting down")
	}
	for _, p := range peers {
		<-p.closed
	}
	s.mu.Lock()
	bcs := make([]*broadcaster, 0, len(s.feedsBc))
	for _, b := range s.feedsBc {
		bcs = append(bcs, b)
	}
	s.mu.Unlock()
	for _, b := range bcs {
		b.stop()
		<-b.done
	}
	s.closeSockets()
}

// Register adds the WHEP routes to mux.
func (s *Server) Register(mux *route.Mux) {
	if s.cfg.Addr == "off" {
		return
	}
	mux.HandleFunc("POST /{feed}/whep", route.Read, s.serveOffer)
	mux.HandleFunc("OPTIONS /{feed}/whep", route.Public, s.servePreflight)
	mux.HandleFunc("DELETE /{feed}/whep/{id}", route.Read, s.serveDelete)
	mux.HandleFunc("OPTIONS /{feed}/whep/{id}", route.Public, s.servePreflight)
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			w.Header().Set("Access-Control-Expose-Headers", "Location, Link")
			return
		}
	}
}

func (s *Server) servePreflight(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	w.Header().Set("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

// serveOffer admits the viewer at the door before anything costly: the
// door's limits (per feed, per address, overall) and the server's own
// MaxPeers are taken first, then a building slot, and only then is the
// peer connection built. The session counts from the POST, so an offer
// whose client never connects holds a viewer slot until connectTimeout.
func (s *Server) serveOffer(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	name := r.PathValue("feed")
	h, ok := s.door.Feed(name)
	if !ok {
		http.Error(w, "no such feed", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		http.Error(w, "the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	offer, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	params := h.Params()
	if params.Gen == 0 {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the feed has no picture yet", http.StatusServiceUnavailable)
		return
	}
	sess, err := s.door.Admit(door.WhoHTTP(r, name, door.WebRTC))
	if err != nil {
		door.Refuse(w, err)
		return
	}
	if err := s.reserve(); err != nil {
		sess.Leave("refused: " + err.Error())
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	began := time.Now()
	p, answer, err := s.build(r, name, h, params, string(offer), sess)
	if err != nil {
		s.unreserve()
		sess.Leave("offer failed: " + err.Error())
		code := http.StatusBadRequest
		if errors.Is(err, errFull) || errors.Is(err, ErrDisabled) {
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "whep/"+p.id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
	p.log.Debug("webrtc: offer answered", "took", time.Since(began).Round(100*time.Microsecond).String())
}

// reserve takes one of maxPeers under the lock, so that concurrent offers
// cannot pass the check together and all be built.
func (s *Server) reserve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.started || s.closed:
		return ErrDisabled
	case s.reserved >= s.maxPeers:
		return errFull
	}
	s.reserved++
	return nil
}

func (s *Server) unreserve() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// build waits for a building slot, then builds the peer.
func (s *Server) build(r *http.Request, name string, h *hub.Hub, params hub.Params, offer string, sess *door.Session) (*peer, string, error) {
	t := time.NewTimer(buildWait)
	defer t.Stop()
	select {
	case s.building <- struct{}{}:
	case <-t.C:
		return nil, "", fmt.Errorf("%w: busy answering other offers", errFull)
	case <-r.Context().Done():
		return nil, "", r.Context().Err()
	}
	defer func() { <-s.building }()
	return s.newPeer(name, h, params, offer, r.RemoteAddr, sess)
}

// serveDelete ends a session: its viewer slot is free when this returns.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	s.mu.Lock()
	p := s.peers[r.PathValue("id")]
	s.mu.Unlock()
	if p == nil || p.feed != r.PathValue("feed") {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	p.close("viewer hung up")
	w.WriteHeader(http.StatusOK)
}

var errFull = errors.New("webrtc: too many viewers")

func (s *Server) api(params hub.Params) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	own := params.Info.ProfileLevelID()
	plids := []string{own, "42e01f", "42001f", "4d001f", "64001f"}
	seen := map[string]bool{}
	pt := webrtc.PayloadType(102)
	for _, plid := range plids {
		if seen[plid[:4]] {
			continue
		}
		seen[plid[:4]] = true
		err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
				RTCPFeedback: fb,
			},
			PayloadType: pt,
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, err
		}
		pt++
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: playoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if s.linkHook != nil {
		s.linkHook(ir)
	}
	// Sender reports only. NACKs are answered by the peer itself, from
	// the shared payloads (no per-peer copy) and only while they can
	// still help; pion's responder would copy every packet for every
	// peer, and would resend into a link that is already too slow.
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s.se), webrtc.WithInterceptorRegistry(ir)), nil
}

// newPeer builds the peer connection for a reserved slot and answers
// the offer. The peer joins its feed's broadcaster once connected.
func (s *Server) newPeer(name string, h *hub.Hub, params hub.Params, offer, remote string, sess *door.Session) (*peer, string, error) {
	api, err := s.api(params)
	if err != nil {
		return nil, "", fmt.Errorf("webrtc: %w", err)
	}
	var ice []webrtc.ICEServer
	for _, u := range s.cfg.STUN {
		if !strings.HasPrefix(u, "stun:") {
			u = "stun:" + u
		}
		ice = append(ice, webrtc.ICEServer{URLs: []string{u}})
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: ice})
	if err != nil {
		return nil, "", fmt.Errorf("webrtc: %w", err)
	}
	fail := func(err error) (*peer, string, error) {
		_ = pc.Close()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("webrtc: offer: %w", err))
	}
	tr := newTrack([2]byte{params.Info.ProfileIDC, params.Info.ConstraintSet})
	sender, err := pc.AddTrack(tr)
	if err != nil {
		return fail(fmt.Errorf("webrtc: add track: %w", err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("webrtc: answer: %w", err))
	}
	if !strings.Contains(answer.SDP, "H264") {
		return fail(errNoH264)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("webrtc: answer: %w", err))
	}
	select {
	case <-gathered:
	case <-time.After(3 * time.Second):
	}
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	p := newPeer(id, name, s, pc, tr, sess, h.Config().LagBudget, remote)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(ErrDisabled)
	}
	s.peers[id] = p
	b := s.feedsBc[name]
	if b != nil && (b.h != h || b.finished()) {
		b = nil // the feed was closed or replaced; its old broadcaster ends its peers
	}
	if b == nil {
		b = newBroadcaster(s, name, h)
		s.feedsBc[name] = b
	}
	p.b = b
	b.add(p)
	timeout := s.connectTimeout
	s.mu.Unlock()
	p.watchConnect(timeout)
	// The client cannot connect before it has the answer, so the peer is
	// in place before any state change can close it.
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			p.close("connection " + st.String())
		case webrtc.PeerConnectionStateConnected:
			p.connOnce.Do(func() { close(p.connected) })
		}
	})
	go p.sendLoop()
	go p.rtcpLoop(sender)
	return p, pc.LocalDescription().SDP, nil
}

// removePeer forgets a closed peer, and stops its feed's broadcaster
// when it was the last.
func (s *Server) removePeer(p *peer) {
	s.mu.Lock()
	if _, ok := s.peers[p.id]; ok {
		delete(s.peers, p.id)
		s.reserved--
	}
	var stop *broadcaster
	if p.b != nil && p.b.remove(p) && s.feedsBc[p.feed] == p.b {
		delete(s.feedsBc, p.feed)
		stop = p.b
	}
	s.mu.Unlock()
	if stop != nil {
		stop.stop()
		<-stop.done
	}
}

// Stats are the output's counters.
type Stats struct {
	Viewers      int
	Broadcasters int
	KeyframeOnly int // viewers whose link gets keyframes only
}

// Stats returns a snapshot.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Viewers: len(s.peers), Broadcasters: len(s.feedsBc)}
	for _, p := range s.peers {
		if m, _, _ := p.cc.State(); m == modeKeyframes {
			st.KeyframeOnly++
		}
	}
	return st
}
