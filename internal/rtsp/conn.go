package rtsp

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
)

// unsentLimit caps the bytes a TCP connection may hold in the kernel that
// have not been sent yet (TCP_NOTSENT_LOWAT on Linux, a small send buffer
// elsewhere). Without it the kernel buffers megabytes for a slow reader,
// seconds of video that the server can no longer skip: the lag that lets
// other servers' slow readers drift 14 s behind.
const unsentLimit = 4 << 10

// coalesceLimit is the most interleaved RTP bytes a connection holds back
// to write them with one system call.
const coalesceLimit = 32 << 10

// trackedConn is an accepted RTSP connection. It does two things for the
// viewer on it.
//
// It counts the interleaved RTP bytes that the kernel has taken, so that
// the viewer knows how much it has queued in gortsplib that has not
// reached the socket yet. gortsplib writes each interleaved frame with one
// Write (pkg/conn), which is what makes the count exact.
//
// And it writes an access unit's packets with one system call rather than
// one each: RTP frames are held back until the one with the marker bit,
// the last of the access unit (RFC 6184 5.1), or until coalesceLimit.
// gortsplib makes a write per packet, and those system calls were half of
// the server's CPU time with 100 viewers. Anything else written (RTCP,
// RTSP) first writes what is held back, so the order on the wire is
// unchanged.
type trackedConn struct {
	net.Conn
	raw syscall.RawConn // the TCP socket, for kernelBacklog; nil if unknown

	wmu    sync.Mutex // orders writes: gortsplib writes RTSP and RTP from different goroutines
	buf    []byte     // RTP frames held back
	bufRTP uint64

	rtpBytes atomic.Uint64 // interleaved RTP frames written, framing included
	waiting  atomic.Bool
	wake     chan struct{}

	// The interleaved channel and SSRC of the first RTP frame gortsplib
	// wrote, for a viewer that then writes its own frames (writeRTP).
	rtpSeen    bool
	rtpChannel byte
	rtpSSRC    uint32
	tls        bool // TLS under the tracking: writev would make a record per buffer

	deadline atomic.Int64 // the write deadline last set, UnixNano; 0 if none (see armDeadline)

	tw *hub.TryWriter // tryWriteRTP's non-blocking write; nil without raw

	onSent  func(received, sentAt time.Time) // measurements only; nil in service
	marksMu sync.Mutex
	marks   []mark // ends of access units, for onSent
}

// mark is the end of one access unit in the RTP byte count.
type mark struct {
	end      uint64
	received time.Time
}

func newTrackedConn(c net.Conn, raw syscall.RawConn, onSent func(received, sentAt time.Time)) *trackedConn {
	tc := &trackedConn{Conn: c, raw: raw, wake: make(chan struct{}, 1), onSent: onSent}
	if raw != nil {
		tc.tw = hub.NewTryWriter(raw)
	}
	return tc
}

// delivered is how many RTP bytes have left for the client: those
// written, less what the kernel has not sent yet (counted generously, as
// the kernel's backlog also holds RTCP, RTSP and TLS bytes).
func (c *trackedConn) delivered() uint64 {
	w := c.rtpBytes.Load()
	if c.raw == nil {
		return w
	}
	return w - min(w, kernelBacklog(c.raw))
}

// Write passes p to the connection, holding back and counting interleaved
// RTP frames ('$', channel, length, then an RTP packet: RFC 2326 10.12).
// RTCP is told apart from RTP by its packet type, as RFC 5761 section 4
// does.
func (c *trackedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(p) >= 4+12 && p[0] == '$' {
		if pt := p[5] & 0x7f; pt < 64 || pt > 95 {
			if !c.rtpSeen {
				c.rtpSeen, c.rtpChannel, c.rtpSSRC = true, p[1], binary.BigEndian.Uint32(p[4+8:])
			}
			c.buf = append(c.buf, p...)
			c.bufRTP += uint64(len(p))
			if p[5]&0x80 != 0 || len(c.buf) >= coalesceLimit {
				if err := c.flushLocked(); err != nil {
					return 0, err
				}
			}
			return len(p), nil
		}
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	n, err := c.Conn.Write(c.buf)
	if n == len(c.buf) {
		total := c.rtpBytes.Add(c.bufRTP)
		if c.onSent != nil {
			c.sent(total)
		}
		if c.waiting.Load() {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	if cap(c.buf) > 2*coalesceLimit {
		c.buf = nil // after a large access unit, do not keep its buffer
	} else {
		c.buf = c.buf[:0]
	}
	c.bufRTP = 0
	return err
}

// learned returns the interleaved channel and SSRC of the first RTP frame
// written, if one was.
func (c *trackedConn) learned() (channel byte, ssrc uint32, ok bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.rtpChannel, c.rtpSSRC, c.rtpSeen
}

// wireChunk is the size of the server's pooled write buffers (see
// viewer.writeDirect): more than a picture of a 4 Mbit/s, 30 fps feed,
// less than its keyframes.
const wireChunk = 32 << 10

// writeRTP writes n bytes of whole interleaved RTP frames, given as
// buffers, with one system call (write, or writev for several buffers)
// on a TCP connection, after anything held back. now is the time of the write: the write deadline
// is kept directWriteTimeout ahead (see armDeadline).
func (c *trackedConn) writeRTP(bufs *net.Buffers, n int, now time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	if !c.tls {
		c.buf = nil // gortsplib writes no more RTP here: nothing to hold back
	}
	c.armDeadline(now)
	switch {
	case len(*bufs) == 1:
		if _, err := c.Conn.Write((*bufs)[0]); err != nil {
			return err
		}
	case c.tls:
		c.buf = c.buf[:0]
		for _, b := range *bufs {
			c.buf = append(c.buf, b...)
		}
		*bufs = nil
		_, err := c.Conn.Write(c.buf)
		c.buf = c.buf[:0]
		if err != nil {
			return err
		}
	default:
		if _, err := bufs.WriteTo(c.Conn); err != nil {
			return err
		}
	}
	total := c.rtpBytes.Add(uint64(n))
	if c.onSent != nil {
		c.sent(total)
	}
	return nil
}

// Outcomes of tryWriteRTP besides a unit written whole (or an error).
const (
	wroteAll = iota
	leftRest // some was written; the connection stays locked for finishRTP
	leftUnit // nothing was written, nothing is locked: writeRTP it
)

// tryWriteRTP is writeRTP without blocking, for the feed's fan-out: it
// writes what the socket takes at once of a unit in one buffer. When
// some of it is left (leftRest), the rest is in bufs and the connection
// stays locked, so that nothing (gortsplib's RTCP) comes between the two
// parts, until finishRTP writes it from the viewer's goroutine. A unit in
// several buffers, or a connection that another writer holds (gortsplib,
// blocked on a client that does not read), is left whole (leftUnit).
func (c *trackedConn) tryWriteRTP(bufs *net.Buffers, n int, now time.Time) (left int, err error) {
	if !c.wmu.TryLock() {
		return leftUnit, nil
	}
	if len(*bufs) != 1 {
		c.wmu.Unlock()
		return leftUnit, nil
	}
	if err := c.flushLocked(); err != nil {
		c.wmu.Unlock()
		return wroteAll, err
	}
	c.buf = nil // gortsplib writes no more RTP here: nothing to hold back
	c.armDeadline(now)
	w, err := c.tw.Write((*bufs)[0])
	if err != nil {
		c.wmu.Unlock()
		return wroteAll, err
	}
	if w < len((*bufs)[0]) {
		(*bufs)[0] = (*bufs)[0][w:]
		return leftRest, nil
	}
	c.wroteRTP(n)
	c.wmu.Unlock()
	return wroteAll, nil
}

// finishRTP writes the rest of a unit of n bytes that tryWriteRTP left,
// blocking, and unlocks the connection.
func (c *trackedConn) finishRTP(bufs *net.Buffers, n int) error {
	defer c.wmu.Unlock()
	if _, err := bufs.WriteTo(c.Conn); err != nil {
		return err
	}
	c.wroteRTP(n)
	return nil
}

// wroteRTP counts n bytes of RTP written by a viewer.
func (c *trackedConn) wroteRTP(n int) {
	total := c.rtpBytes.Add(uint64(n))
	if c.onSent != nil {
		c.sent(total)
	}
}

// armDeadline keeps the connection's write deadline at least two thirds
// of directWriteTimeout ahead of now, and moves it only when it is not:
// setting it is a runtime timer update, which showed in profiles when
// done for every access unit of every viewer. A stalled viewer's write
// therefore fails after between two thirds of directWriteTimeout and
// directWriteTimeout. gortsplib sets the deadline too, before each of
// its own writes (RTCP, RTSP), to its WriteTimeout ahead, which may be
// shorter: SetWriteDeadline notes every deadline set, so that one is
// seen here and moved on in time.
func (c *trackedConn) armDeadline(now time.Time) {
	if time.Duration(c.deadline.Load()-now.UnixNano()) >= directWriteTimeout*2/3 {
		return
	}
	_ = c.SetWriteDeadline(now.Add(directWriteTimeout))
}

// SetWriteDeadline sets the connection's write deadline and notes it for
// armDeadline.
func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	c.deadline.Store(t.UnixNano())
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the connection's read and write deadlines and notes
// the write one for armDeadline.
func (c *trackedConn) SetDeadline(t time.Time) error {
	c.deadline.Store(t.UnixNano())
	return c.Conn.SetDeadline(t)
}

// addMark records that the access unit received at received ends at byte
// end of the RTP count; onSent is called when it has been written.
func (c *trackedConn) addMark(end uint64, received time.Time) {
	c.marksMu.Lock()
	c.marks = append(c.marks, mark{end, received})
	c.marksMu.Unlock()
}

func (c *trackedConn) sent(total uint64) {
	now := time.Now()
	c.marksMu.Lock()
	i := 0
	for ; i < len(c.marks) && c.marks[i].end <= total; i++ {
		c.onSent(c.marks[i].received, now)
	}
	c.marks = append(c.marks[:0], c.marks[i:]...)
	c.marksMu.Unlock()
}

// trackedListener wraps accepted connections in trackedConn, after
// limiting their unsent bytes and, for RTSPS, starting TLS. TLS goes
// under the tracking so that what is counted is RTSP, not TLS records.
type trackedListener struct {
	net.Listener
	tls    *tls.Config
	onSent func(received, sentAt time.Time)
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	var raw syscall.RawConn
	if tc, ok := limits.TCPConn(c); ok {
		limitUnsent(tc, unsentLimit)
		raw, _ = tc.SyscallConn()
	}
	if l.tls != nil {
		c = tls.Server(c, l.tls)
	}
	tc := newTrackedConn(c, raw, l.onSent)
	tc.tls = l.tls != nil
	return tc, nil
}

var errNoUDPPair = errors.New("rtsp: no free UDP port pair")

// rtpSocket is a UDP socket gortsplib sends unicast RTP (and RTCP) from.
// It notes where the last packet of each access unit goes, by timestamp
// and sequence number (sessions of one stream share an SSRC, but each
// viewer's timestamps and sequence numbers start at random), so that a viewer
// that has seen its first packets go through gortsplib can then send its
// own: a whole access unit in one sendmmsg(2), the feed's shared payloads
// behind its own headers, instead of one sendto(2) per packet after a
// marshal and a queue hand-off.
type rtpSocket struct {
	*net.UDPConn
	batch interface {
		WriteBatch(ms []ipv4.Message, flags int) (int, error)
	}

	armed atomic.Int64 // UnixNano when the write deadline was last pushed on
	noGSO atomic.Bool  // the kernel or the route refused UDP_SEGMENT (gso_linux.go)

	// twin is the send-only socket on the same port that the viewers'
	// own sends go through (twin_linux.go), nil where it could not be
	// had (twinErr says why): they then go through this socket.
	twin    *os.File
	twinRC  syscall.RawConn
	twinV6  bool
	twinErr error

	mu   sync.Mutex
	dest map[uint64]*net.UDPAddr // by packetKey
}

// packetKey identifies an RTP packet among the viewers of one socket.
func packetKey(ts uint32, seq uint16) uint64 { return uint64(ts)<<16 | uint64(seq) }

func newRTPSocket(c *net.UDPConn, twin bool) *rtpSocket {
	s := &rtpSocket{UDPConn: c, dest: map[uint64]*net.UDPAddr{}}
	a, ok := c.LocalAddr().(*net.UDPAddr)
	if ok && a.IP.To4() != nil {
		s.batch = ipv4.NewPacketConn(c)
	} else {
		s.batch = ipv6.NewPacketConn(c)
	}
	if twin {
		s.twin, s.twinErr = openTwin(c)
	}
	if s.twin != nil {
		if s.twinRC, s.twinErr = s.twin.SyscallConn(); s.twinErr != nil {
			s.twin.Close()
			s.twin = nil
		}
		s.twinV6 = !ok || a.IP.To4() == nil
	}
	return s
}

// Close closes the socket and its twin.
func (s *rtpSocket) Close() error {
	if s.twin != nil {
		s.twin.Close()
	}
	return s.UDPConn.Close()
}

// WriteTo notes the destination of the last RTP packet of an access unit
// (RFC 3550 5.1: version 2, our payload type, the marker bit) and sends
// the packet.
func (s *rtpSocket) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) >= 12 && p[0]>>6 == 2 && p[1] == 0x80|payloadType {
		if ua, ok := addr.(*net.UDPAddr); ok {
			k := packetKey(binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint16(p[2:]))
			s.mu.Lock()
			if len(s.dest) < 1<<16 { // bounded, whatever happens to the viewers that should take them
				s.dest[k] = ua
			}
			s.mu.Unlock()
		}
	}
	return s.UDPConn.WriteTo(p, addr)
}

// destination returns, once gortsplib has sent it, where the packet with
// key k went, and forgets it.
func (s *rtpSocket) destination(k uint64) *net.UDPAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.dest[k]
	if a != nil {
		delete(s.dest, k)
	}
	return a
}

// forget drops a packet's destination that its viewer will not ask for.
func (s *rtpSocket) forget(k uint64) {
	s.mu.Lock()
	delete(s.dest, k)
	s.mu.Unlock()
}

// send writes every message, as few sendmmsg(2) as it takes, and returns
// how many it wrote: through the twin, with the viewer's m, or else
// through this socket.
//
// This socket's write deadline is shared by every session on it, and
// gortsplib sets it before each packet it sends: once viewers send their
// own, nothing would push it on, and every send would fail when the last
// one gortsplib set passed. So send keeps it at least nine seconds ahead,
// touching it at most once a second.
func (s *rtpSocket) send(ms []ipv4.Message, m *mmsgSender) (int, error) {
	if s.twin != nil {
		m.v6 = s.twinV6
		return m.send(s.twinRC, ms)
	}
	now := time.Now()
	if a := s.armed.Load(); now.UnixNano()-a > int64(time.Second) && s.armed.CompareAndSwap(a, now.UnixNano()) {
		_ = s.UDPConn.SetWriteDeadline(now.Add(directWriteTimeout))
	}
	sent := 0
	for sent < len(ms) {
		n, err := s.batch.WriteBatch(ms[sent:], 0)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// gso reports whether senders may ask the kernel to segment.
func (s *rtpSocket) gso() bool { return gsoAvailable && !s.noGSO.Load() }

// udpPair hands gortsplib a free, consecutive even/odd UDP port pair when
// the configured RTP port is 0: gortsplib asks for "host:0" (RTP) and then
// "host:1" (RTCP), which is what Config.udpAddrs passes it in that case.
type udpPair struct {
	log    *slog.Logger
	noTwin bool // see Config.noTwin

	mu   sync.Mutex
	rtcp net.PacketConn
	rtp  *rtpSocket // the unicast RTP socket, once gortsplib asked for it
}

func (u *udpPair) listenPacket(network, address string) (net.PacketConn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	switch port {
	case "0":
		pc, err := u.allocate(network, host)
		return u.track(pc, err)
	case "1":
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.rtcp != nil {
			pc := u.rtcp
			u.rtcp = nil
			return pc, nil
		}
	}
	pc, err := net.ListenPacket(network, address)
	if ip := net.ParseIP(host); ip != nil && ip.IsMulticast() {
		return pc, err // a multicast group's socket, which gortsplib wants bare
	}
	if p, _ := strconv.Atoi(port); p%2 == 0 {
		return u.track(pc, err) // gortsplib asks for RTP on the even port, RTCP on the odd one
	}
	return pc, err
}

// track wraps the RTP socket in an rtpSocket.
func (u *udpPair) track(pc net.PacketConn, err error) (net.PacketConn, error) {
	uc, ok := pc.(*net.UDPConn)
	if err != nil || !ok {
		return pc, err
	}
	s := newRTPSocket(uc, !u.noTwin)
	if s.twinErr != nil && u.log != nil {
		u.log.Info("rtsp: UDP viewers send from the RTP socket itself, with more CPU per packet (no send-only socket beside it)", "err", s.twinErr)
	}
	u.mu.Lock()
	u.rtp = s
	u.mu.Unlock()
	return s, nil
}

// rtpSocket returns the unicast RTP socket, or nil.
func (u *udpPair) rtpSocket() *rtpSocket {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.rtp
}

func (u *udpPair) allocate(network, host string) (net.PacketConn, error) {
	var lastErr error
	for range 100 {
		rtp, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		port := rtp.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			rtp.Close()
			continue
		}
		rtcp, err := net.ListenPacket(network, net.JoinHostPort(host, strconv.Itoa(port+1)))
		if err != nil {
			rtp.Close()
			lastErr = err
			continue
		}
		u.mu.Lock()
		if u.rtcp != nil {
			u.rtcp.Close()
		}
		u.rtcp = rtcp
		u.mu.Unlock()
		return rtp, nil
	}
	if lastErr == nil {
		lastErr = errNoUDPPair
	}
	return nil, lastErr
}

func (u *udpPair) close() {
	u.mu.Lock()
	if u.rtcp != nil {
		u.rtcp.Close()
		u.rtcp = nil
	}
	u.mu.Unlock()
}
