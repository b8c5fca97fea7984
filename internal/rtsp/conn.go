package rtsp

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	return &trackedConn{Conn: c, raw: raw, wake: make(chan struct{}, 1), onSent: onSent}
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

// writeRTP writes n bytes of whole interleaved RTP frames, given as
// buffers, with one system call (writev) on a TCP connection, after
// anything held back. deadline bounds the write.
func (c *trackedConn) writeRTP(bufs *net.Buffers, n int, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	_ = c.Conn.SetWriteDeadline(deadline)
	if c.tls {
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
	} else if _, err := bufs.WriteTo(c.Conn); err != nil {
		return err
	}
	total := c.rtpBytes.Add(uint64(n))
	if c.onSent != nil {
		c.sent(total)
	}
	return nil
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
	if tc, ok := c.(*net.TCPConn); ok {
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

// udpPair hands gortsplib a free, consecutive even/odd UDP port pair when
// the configured RTP port is 0: gortsplib asks for "host:0" (RTP) and then
// "host:1" (RTCP), which is what Config.udpAddrs passes it in that case.
type udpPair struct {
	mu   sync.Mutex
	rtcp net.PacketConn
}

func (u *udpPair) listenPacket(network, address string) (net.PacketConn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	switch port {
	case "0":
		return u.allocate(network, host)
	case "1":
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.rtcp != nil {
			pc := u.rtcp
			u.rtcp = nil
			return pc, nil
		}
	}
	return net.ListenPacket(network, address)
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
