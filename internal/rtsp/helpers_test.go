package rtsp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
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
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// testFeeds is a Feeds with fixed hubs.
type testFeeds struct { // the feeds behind the door
	mu   sync.Mutex
	hubs map[string]*hub.Hub
}

func newTestFeeds(hubs map[string]*hub.Hub) *testFeeds { return &testFeeds{hubs: hubs} }

func (f *testFeeds) Hub(name string) (*hub.Hub, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hubs[name]
	return h, ok
}

func (f *testFeeds) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n []string
	for k := range f.hubs {
		n = append(n, k)
	}
	return n
}

// feeder makes the test pattern in real time and publishes it into a hub
// through the parser, as the app's feed does. It remembers every frame's
// capture time, so readers can tell which frames they missed.
type feeder struct {
	hub    *hub.Hub
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	index  map[int64]int // capture time (µs) → frame number
	keys   map[int]bool  // frame number → keyframe
	frames int
}

func startFeeder(t testing.TB, h *hub.Hub, cfg testsrc.Config) *feeder {
	t.Helper()
	g, err := testsrc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &feeder{hub: h, cancel: cancel, done: make(chan struct{}), index: map[int64]int{}, keys: map[int]bool{}}
	p := h264.NewParser(h264.ParserConfig{})
	go func() {
		defer close(f.done)
		_ = g.Run(ctx, 0, func(nalus [][]byte, key bool, ts time.Time) error {
			f.mu.Lock()
			f.index[ts.UnixMicro()] = f.frames
			f.keys[f.frames] = key
			f.frames++
			f.mu.Unlock()
			p.WriteAU(nalus, time.Now(), h.Publish)
			return nil
		})
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *feeder) stop() {
	f.cancel()
	<-f.done
}

// frame returns the number of the frame captured at ts, and whether it was
// a keyframe.
func (f *feeder) frame(ts time.Time) (int, bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.index[ts.UnixMicro()]
	return n, f.keys[n], ok
}

// newFeed returns a hub fed with the test pattern, and its feeder.
func newFeed(t testing.TB, cfg testsrc.Config, hcfg hub.Config) (*hub.Hub, *feeder) {
	h := hub.New(hcfg)
	t.Cleanup(h.Close)
	return h, startFeeder(t, h, cfg)
}

// liveEdge returns a readerOpts.edge for h: its newest capture time.
func liveEdge(h *hub.Hub) func() time.Time {
	return func() time.Time {
		if _, newest := h.Latest(); newest != nil {
			return newest.Captured
		}
		return time.Time{}
	}
}

// lags returns how far behind the live edge each unit was when it
// arrived, on the stream's own clock: the newest capture time in the hub
// minus the unit's. Unlike arrival minus capture, it does not grow when a
// busy machine runs the test pattern late.
func lags(units []received) []time.Duration {
	var out []time.Duration
	for _, u := range units {
		if !u.edge.IsZero() && !u.captured.IsZero() {
			out = append(out, max(0, u.edge.Sub(u.captured)))
		}
	}
	return out
}

// waitKeyframe waits until the hub holds a keyframe.
func waitKeyframe(t testing.TB, h *hub.Hub) {
	t.Helper()
	deadline := time.Now().Add(testsupport.Patience)
	for h.Params().Gen == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no keyframe in the hub")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startServer starts a server on loopback with free ports.
func startServer(t testing.TB, cfg Config, feeds door.Feeds, pubs Publishers, auth Auth) (*Server, *testLog) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.UDPRTPAddr == "" {
		cfg.UDPRTPAddr = "127.0.0.1:0"
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports = []string{TransportUDP, TransportTCP}
	}
	lg := &testLog{}
	s := New(cfg, door.Unlimited(feeds), pubs, auth, slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, lg
}

func url(s *Server, path string) string {
	scheme := "rtsp"
	if s.tls {
		scheme = "rtsps"
	}
	return scheme + "://" + s.Addr().String() + "/" + path
}

// received is one access unit as a test client got it.
type received struct {
	nalus    [][]byte
	key      bool
	arrival  time.Time
	rtpTime  uint32
	ntp      time.Time // from RTCP sender reports; zero before the first
	captured time.Time // the test pattern's capture time SEI
	edge     time.Time // the feed's newest capture time on arrival (with readerOpts.edge)
}

// reader is an in-process RTSP client that collects access units.
type reader struct {
	c       *gortsplib.Client
	started time.Time // when PLAY was answered
	playAt  time.Time // when PLAY was sent

	edge func() time.Time

	mu   sync.Mutex
	aus  []received
	wake chan struct{}
	lost uint64
}

type readerOpts struct {
	protocol gortsplib.Protocol
	dial     func(ctx context.Context, network, address string) (net.Conn, error)
	tls      bool
	// edge, if set, returns the feed's newest capture time, so that lag
	// can be measured on the stream's own clock (see lags).
	edge func() time.Time
}

func startReader(t testing.TB, u string, o readerOpts) *reader {
	t.Helper()
	r, err := openReader(u, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

func openReader(u string, o readerOpts) (*reader, error) {
	pu, err := base.ParseURL(u)
	if err != nil {
		return nil, err
	}
	proto := o.protocol
	r := &reader{wake: make(chan struct{}, 1), edge: o.edge}
	r.c = &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto, DialContext: o.dial}
	if o.tls {
		r.c.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	r.c.OnPacketsLost = func(lost uint64) {
		r.mu.Lock()
		r.lost += lost
		r.mu.Unlock()
	}
	if err := r.c.Start(); err != nil {
		return nil, err
	}
	desc, _, err := r.c.Describe(pu)
	if err != nil {
		r.c.Close()
		return nil, err
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		r.c.Close()
		return nil, fmt.Errorf("no H.264 in %v", desc)
	}
	if _, err := r.c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		r.c.Close()
		return nil, err
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		r.c.Close()
		return nil, err
	}
	r.c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) { r.onPacket(medi, dec, pkt) })
	r.playAt = time.Now()
	if _, err := r.c.Play(nil); err != nil {
		r.c.Close()
		return nil, err
	}
	r.started = time.Now()
	return r, nil
}

func (r *reader) onPacket(medi *description.Media, dec *rtph264.Decoder, pkt *rtp.Packet) {
	now := time.Now()
	au, err := dec.Decode(pkt)
	if err != nil {
		return
	}
	rc := received{arrival: now, rtpTime: pkt.Timestamp}
	if r.edge != nil {
		rc.edge = r.edge()
	}
	rc.ntp, _ = r.c.PacketNTP(medi, pkt)
	for _, n := range au {
		rc.nalus = append(rc.nalus, append([]byte(nil), n...))
		switch h264.TypeOf(n) {
		case h264.NALUTypeIDR:
			rc.key = true
		case h264.NALUTypeSEI:
			if kind, ts, err := h264.ParseTimeSEI(n); err == nil && kind == h264.TimeCapture {
				rc.captured = ts
			}
		}
	}
	r.mu.Lock()
	r.aus = append(r.aus, rc)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitUnits waits until n access units have arrived.
func (r *reader) waitUnits(t testing.TB, n int, timeout time.Duration) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got := len(r.aus)
		r.mu.Unlock()
		if got >= n {
			return r.units()
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("got %d access units in %v, want %d", got, timeout, n)
		}
	}
}

func (r *reader) units() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.aus...)
}

func (r *reader) close() { r.c.Close() }

// udpTestViewer is a unicast UDP viewer sending from a socket of its own
// to recv, and an access unit of every packet shape: small single NAL
// units, a long run of FU-As with a short last one (longer than one
// segmentation message may carry), and a second, shorter FU-A run.
func udpTestViewer(t testing.TB) (*viewer, *net.UDPConn, *rtpUnit) {
	t.Helper()
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	_ = recv.SetReadBuffer(4 << 20)
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	big := make([]byte, 100_000) // 69 FU-As
	big[0] = 0x65                // IDR slice
	for i := 1; i < len(big); i++ {
		big[i] = byte(i * 7)
	}
	small := bytes.Repeat([]byte{0x41, 9}, 1600) // a P slice of 3200 bytes: 3 FU-As
	u := &rtpUnit{}
	u.packetize([][]byte{{0x67, 0x42, 0xc0, 0x1e}, {0x68, 0xce, 0x3c, 0x80}, big, small})
	s := New(Config{}, door.Unlimited(newTestFeeds(nil)), nil, nil, testsupport.Logger(t))
	v := &viewer{s: s, feed: &feed{s: s, name: "cam"}, udp: newRTPSocket(sc, true), dest: recv.LocalAddr().(*net.UDPAddr), seq: 65530, label: "test"}
	v.pkt.SSRC = 0x11223344
	return v, recv, u
}
