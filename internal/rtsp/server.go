// Package rtsp serves every feed over RTSP (RFC 2326) and accepts RTSP
// publishers, on top of gortsplib. It adds what a camera server needs on
// top of the protocol: each viewer has its own cursor into the feed's hub,
// so a slow one skips to a keyframe without delaying anyone else; a new
// viewer starts at the newest keyframe and reaches the live edge at once
// (see clock); and descriptions always carry the feed's live SPS/PPS.
//
// The package never reads a camera itself: it takes hubs from Feeds, and
// hands published video to Publishers.
package rtsp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
)

// Publishers takes RTSP publishers (ANNOUNCE/RECORD) for feeds whose
// source is "publish". The app implements it.
type Publishers interface {
	// Publish claims the feed for one publisher and returns where its
	// access units go; release is called once when the publisher leaves.
	// It returns an error wrapping ErrNotPublishable when the feed does not
	// take publishers, or ErrBusy when another publisher has it.
	Publish(feed string) (sink source.Sink, release func(), err error)
}

// Errors Publishers returns, which the server turns into RTSP statuses.
var (
	ErrNotPublishable = errors.New("rtsp: feed does not take publishers")
	ErrBusy           = errors.New("rtsp: feed already has a publisher")
)

// Actions passed to Auth.Allow.
const (
	ActionRead    = "read"
	ActionPublish = "publish"
)

// Auth decides who may read and publish. A nil Auth lets everyone do both.
//
// An Auth may also have a method DigestCapable() bool, reporting whether
// Password knows every user's password. When it returns false, clients
// are offered Basic only: a client offered Digest (RFC 2617) uses it, and
// a user whose password is stored hashed cannot log in with Digest.
type Auth interface {
	// Allow reports whether user (empty for anonymous) with password pass
	// may do action (ActionRead or ActionPublish) on feed, checking the
	// password. The server asks for anonymous access first. remote is the
	// client's address, which wrong passwords are counted against.
	Allow(feed, action, user, pass, remote string) bool
	// Password returns user's plaintext password, or false for an unknown
	// user or one whose password is stored hashed. Digest needs it.
	Password(user string) (string, bool)
}

// Transports a server can offer.
const (
	TransportUDP       = "udp"
	TransportTCP       = "tcp"
	TransportMulticast = "multicast"
)

// Defaults for Config.
const (
	DefaultAddr              = ":8554"
	DefaultUDPRTPAddr        = ":8000"
	DefaultUDPRTCPAddr       = ":8001"
	DefaultMulticastIPRange  = "224.1.0.0/16"
	DefaultMulticastRTPPort  = 8002
	DefaultMulticastRTCPPort = 8003
	DefaultFeed              = "cam"
	DefaultTimeout           = 10 * time.Second
	DefaultDescribeWait      = 2 * time.Second
)

// Config sets up the server. The zero value of each field means its
// default.
type Config struct {
	// Addr is the RTSP (or, with a certificate, RTSPS) listen address.
	Addr string
	// Transports offered: any of "udp", "tcp", "multicast". Default: all.
	Transports []string
	// UDPRTPAddr and UDPRTCPAddr are the server's UDP ports (an even port
	// and the next). A port of 0 picks a free pair.
	UDPRTPAddr, UDPRTCPAddr string
	// MulticastIPRange is where multicast groups are taken from, one per
	// feed; MulticastRTPPort and MulticastRTCPPort are their ports.
	MulticastIPRange                    string
	MulticastRTPPort, MulticastRTCPPort int
	// ServerCert and ServerKey (PEM files) turn on RTSPS on Addr; plain
	// RTSP is then not served. Multicast is not offered over RTSPS.
	ServerCert, ServerKey string
	// DefaultFeed is served at rtsp://HOST:PORT/ (default "cam").
	DefaultFeed string
	// ReadTimeout and WriteTimeout bound one read or write on a
	// connection; a viewer whose socket takes no data for WriteTimeout is
	// disconnected. Default 10 s each.
	ReadTimeout, WriteTimeout time.Duration
	// Listener, if set, wraps the RTSP listener (the per-address
	// connection cap).
	Listener func(net.Listener) net.Listener
	// DescribeWait is how long a DESCRIBE waits for a feed's first
	// keyframe (whose SPS/PPS the description needs) before it answers
	// 503. Default 2 s.
	DescribeWait time.Duration
	// PublishTimeout drops a publisher that sends no access unit for this
	// long, from its ANNOUNCE or since its last one, freeing the feed for
	// another. Default source.DefaultPublishTimeout (5 s).
	PublishTimeout time.Duration

	// noTwin makes UDP viewers send from the RTP socket itself, as where
	// its send-only twin cannot be had (twin_linux.go). Tests only.
	noTwin bool
	// senderReportPeriod is the time between a viewer's RTCP sender
	// reports (see viewer.senderReport); defaultSenderReportPeriod when
	// zero. Tests only.
	senderReportPeriod time.Duration
}

// defaultSenderReportPeriod is the time between two RTCP sender reports
// of a viewer: gortsplib's own period.
const defaultSenderReportPeriod = 10 * time.Second

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportUDP, TransportMulticast, TransportTCP}
	}
	if c.UDPRTPAddr == "" && c.UDPRTCPAddr == "" {
		c.UDPRTPAddr, c.UDPRTCPAddr = DefaultUDPRTPAddr, DefaultUDPRTCPAddr
	}
	if c.MulticastIPRange == "" {
		c.MulticastIPRange = DefaultMulticastIPRange
	}
	if c.MulticastRTPPort == 0 && c.MulticastRTCPPort == 0 {
		c.MulticastRTPPort, c.MulticastRTCPPort = DefaultMulticastRTPPort, DefaultMulticastRTCPPort
	}
	if c.DefaultFeed == "" {
		c.DefaultFeed = DefaultFeed
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultTimeout
	}
	if c.DescribeWait <= 0 {
		c.DescribeWait = DefaultDescribeWait
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = source.DefaultPublishTimeout
	}
	if c.senderReportPeriod <= 0 {
		c.senderReportPeriod = defaultSenderReportPeriod
	}
}

func (c *Config) offers(transport string) bool { return slices.Contains(c.Transports, transport) }

func (c *Config) validate() error {
	for _, t := range c.Transports {
		if t != TransportUDP && t != TransportTCP && t != TransportMulticast {
			return fmt.Errorf("rtsp: transport %q is not one of udp, tcp, multicast", t)
		}
	}
	if (c.ServerCert == "") != (c.ServerKey == "") {
		return errors.New("rtsp: a server certificate needs a key, and a key a certificate")
	}
	return nil
}

// Server is the RTSP server. Start it, Close it; it may not be restarted.
type Server struct {
	cfg  Config
	door *door.Door
	pubs Publishers
	auth Auth
	log  *slog.Logger

	srv *gortsplib.Server
	udp *udpPair
	tls bool

	mu       sync.Mutex
	byName   map[string]*feed
	sessions map[*gortsplib.ServerSession]*session
	closed   bool
	done     chan struct{} // closed by Close, ends waits

	wrongLog, forbiddenLog, skipLog *limiter

	// wire holds *[wireChunk]byte buffers in which TCP viewers lay out
	// an access unit for one write(2) (viewer.writeDirect); only viewers
	// in the middle of a write hold one.
	wire sync.Pool

	// fanouts serve the TCP viewers that keep up, one goroutine per feed
	// (see viewer.push).
	fanouts hub.Fanouts

	// onSent, when set before Start, is called for every access unit a
	// TCP viewer's socket has taken, with its ingest time (measurements).
	onSent func(received, sentAt time.Time)
}

// New returns a server whose viewers enter through d; nothing listens
// until Start. pubs may be nil when no feed takes publishers; auth may be
// nil to allow everyone.
func New(cfg Config, d *door.Door, pubs Publishers, auth Auth, log *slog.Logger) *Server {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, door: d, pubs: pubs, auth: auth, log: log,
		byName:       make(map[string]*feed),
		sessions:     make(map[*gortsplib.ServerSession]*session),
		done:         make(chan struct{}),
		wrongLog:     newLimiter(log, slog.LevelWarn, "rtsp: refused credentials"),
		forbiddenLog: newLimiter(log, slog.LevelWarn, "rtsp: refused a user without the right"),
		skipLog:      newLimiter(log, slog.LevelInfo, "rtsp: slow viewers skipped ahead to a keyframe"),
		wire:         sync.Pool{New: func() any { return new([wireChunk]byte) }},
	}
}

// listen opens the RTSP listener, wrapped by Config.Listener.
func (s *Server) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil || s.cfg.Listener == nil {
		return ln, err
	}
	return s.cfg.Listener(ln), nil
}

// Start listens and serves. It returns an error naming the address when a
// port is taken or the certificate cannot be loaded.
func (s *Server) Start() error {
	if err := s.cfg.validate(); err != nil {
		return err
	}
	var tlsConf *tls.Config
	if s.cfg.ServerCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.ServerCert, s.cfg.ServerKey)
		if err != nil {
			return fmt.Errorf("rtsp: load certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.tls = true
	}
	s.udp = &udpPair{log: s.log, noTwin: s.cfg.noTwin}
	srv := &gortsplib.Server{
		Handler:        &handler{s},
		RTSPAddress:    s.cfg.Addr,
		ReadTimeout:    s.cfg.ReadTimeout,
		WriteTimeout:   s.cfg.WriteTimeout,
		TLSConfig:      tlsConf,
		WriteQueueSize: writeQueueSize, // see its doc: the queue is rarely used
		// Viewers write most of their packets themselves, which
		// gortsplib does not count: they send their own sender reports.
		DisableRTCPSenderReports: true,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := s.listen(network, address)
			if err != nil {
				return nil, err
			}
			return &trackedListener{Listener: ln, onSent: s.onSent}, nil
		},
		TLSListen: func(network, address string, conf *tls.Config) (net.Listener, error) {
			ln, err := s.listen(network, address)
			if err != nil {
				return nil, err
			}
			return &trackedListener{Listener: ln, tls: conf, onSent: s.onSent}, nil
		},
		ListenPacket: s.udp.listenPacket,
	}
	if s.cfg.offers(TransportUDP) {
		rtp, rtcp, err := udpAddrs(s.cfg.UDPRTPAddr, s.cfg.UDPRTCPAddr)
		if err != nil {
			return err
		}
		srv.UDPRTPAddress, srv.UDPRTCPAddress = rtp, rtcp
	}
	if s.cfg.offers(TransportMulticast) && tlsConf == nil {
		srv.MulticastIPRange = s.cfg.MulticastIPRange
		srv.MulticastRTPPort = s.cfg.MulticastRTPPort
		srv.MulticastRTCPPort = s.cfg.MulticastRTCPPort
	}
	if err := srv.Start(); err != nil {
		s.udp.close()
		return fmt.Errorf("rtsp: listen on %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	scheme := "rtsp"
	if s.tls {
		scheme = "rtsps"
	}
	s.log.Info("rtsp: serving", "addr", srv.NetListener().Addr().String(), "scheme", scheme, "transports", s.cfg.Transports)
	return nil
}

// udpAddrs checks the UDP pair and maps a 0 RTP port to the "0"/"1" pair
// that udpPair understands as "any free pair".
func udpAddrs(rtp, rtcp string) (string, string, error) {
	host, port, err := net.SplitHostPort(rtp)
	if err != nil {
		return "", "", fmt.Errorf("rtsp: UDP RTP address %q: %w", rtp, err)
	}
	if port == "0" {
		return rtp, net.JoinHostPort(host, "1"), nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p%2 != 0 {
		return "", "", fmt.Errorf("rtsp: UDP RTP port %q must be an even number", port)
	}
	if rtcp == "" {
		rtcp = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	return rtp, rtcp, nil
}

// Close stops the server and waits for every connection, session and
// goroutine it started. It is safe after a failed Start and more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.Close() // ends every session: OnSessionClose stops their viewers
	}
	s.mu.Lock()
	feeds := s.byName
	s.byName = map[string]*feed{}
	s.mu.Unlock()
	for _, f := range feeds {
		f.close()
	}
	if s.udp != nil {
		s.udp.close()
	}
	s.wrongLog.close()
	s.forbiddenLog.close()
	s.skipLog.close()
}

// Addr is the address the server listens on (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	return s.srv.NetListener().Addr()
}

// SessionInfo describes one RTSP session, for /api/v1/status.
type SessionInfo struct {
	Remote    string    `json:"remote"`    // client address
	Transport string    `json:"transport"` // "udp", "tcp" or "multicast"
	Secure    bool      `json:"secure"`    // RTSPS
	Action    string    `json:"action"`    // "read" or "publish"
	User      string    `json:"user,omitempty"`
	Since     time.Time `json:"since"`
	// Bytes sent to a viewer (RTP, framing included) or received from a
	// publisher (access units).
	Bytes uint64 `json:"bytes"`
	// Skips counts the times the viewer jumped ahead to a keyframe.
	Skips uint64 `json:"skips"`
}

// Sessions lists the playing and publishing sessions of a feed.
func (s *Server) Sessions(feed string) []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SessionInfo
	for _, se := range s.sessions {
		if se.feed != nil && se.feed.name == feed && se.active() {
			out = append(out, se.info(s.tls))
		}
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Since.Compare(b.Since) })
	return out
}
