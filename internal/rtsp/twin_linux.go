package rtsp

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The UDP viewers' own sends (sendUDP) go out through a second socket on
// the RTP socket's address, a send-only twin that Go's network poller
// does not know.
//
// Why: every datagram that leaves a socket gives its buffer space back
// (sock_wfree), and the kernel then wakes whoever polls the socket for
// writing. Go's poller watches every socket it owns for that, so each
// send woke the poller's thread for nothing: in a CPU profile of 100 UDP
// viewers, 8 to 12 % of camfeed's time was those wake-ups and the thread
// switches they caused. A socket outside the poller has no one to wake.
//
// The twin shares the port through SO_REUSEPORT, so the clients see the
// packets come from the server_port that SETUP gave them. A reuseport
// group spreads incoming datagrams over its sockets, so a classic BPF
// program on the group sends all of them to the group's first socket,
// gortsplib's (which reads what publishers and clients send to the port);
// the twin's receive buffer is the kernel's smallest, should anything
// reach it all the same.

// openTwin opens the send-only twin of c, or says why it cannot.
func openTwin(c *net.UDPConn) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		sa     unix.Sockaddr
		v6only int
		opErr  error
	)
	if err := rc.Control(func(fd uintptr) {
		if sa, opErr = unix.Getsockname(int(fd)); opErr != nil {
			return
		}
		if _, ok := sa.(*unix.SockaddrInet6); ok {
			if v6only, opErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); opErr != nil {
				return
			}
		}
		// Set after the bind, so that the port was chosen as a port of
		// its own (a reuseport socket bound to port 0 may be given one
		// that another reuseport socket of this user holds).
		opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return nil, err
	}
	if opErr != nil {
		return nil, fmt.Errorf("the RTP socket: %w", opErr)
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (*os.File, error) {
		unix.Close(fd)
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 0) })
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return fail("IPV6_V6ONLY", err)
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1) // the kernel's minimum
	// Sends wait for buffer space (the host's network queue is full) at
	// most as long as a TCP viewer's writes do.
	tv := unix.NsecToTimeval(directWriteTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fail("SO_SNDTIMEO", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	// Every incoming datagram to the group's socket 0: gortsplib's, which
	// was in the port first.
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fail("SO_ATTACH_REUSEPORT_CBPF", err)
	}
	// A blocking descriptor: os.File keeps it out of the poller, and
	// its lock keeps a send from using it once closed.
	return os.NewFile(uintptr(fd), "rtp-send"), nil
}

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgSender sends one viewer's messages with sendmmsg(2) on the twin.
// Its buffers are kept from one access unit to the next, so a send
// allocates nothing; it is for one goroutine at a time.
type mmsgSender struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	name4 unix.RawSockaddrInet4
	name6 unix.RawSockaddrInet6
	v6    bool

	off   int // the messages sent so far
	sent  int // by the last sendmmsg
	errno syscall.Errno
	call  func(fd uintptr) bool
}

// send writes every message of ms to the twin through rc, as few
// sendmmsg(2) as it takes, and returns how many it wrote. All go to the
// address of the first.
func (m *mmsgSender) send(rc syscall.RawConn, ms []ipv4.Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if err := m.prepare(ms); err != nil {
		return 0, err
	}
	if m.call == nil {
		m.call = m.sendmmsg
	}
	m.off = 0
	for m.off < len(ms) {
		m.sent, m.errno = 0, 0
		if err := rc.Write(m.call); err != nil {
			return m.off, err
		}
		if m.errno != 0 {
			return m.off, os.NewSyscallError("sendmmsg", m.errno)
		}
		m.off += m.sent
	}
	return m.off, nil
}

func (m *mmsgSender) sendmmsg(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[m.off])), uintptr(len(m.hdrs)-m.off), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		m.sent, m.errno = int(r), e
		if e != 0 {
			m.sent = 0
		}
		return true
	}
}

// prepare lays ms out as mmsghdrs in m.
func (m *mmsgSender) prepare(ms []ipv4.Message) error {
	addr, ok := ms[0].Addr.(*net.UDPAddr)
	if !ok {
		return fmt.Errorf("rtsp: not a UDP address: %v", ms[0].Addr)
	}
	var name unsafe.Pointer
	var namelen uint32
	if m.v6 {
		m.name6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Scope_id: zoneIndex(addr.Zone)}
		copy(m.name6.Addr[:], addr.IP.To16())
		putPort(&m.name6.Port, addr.Port)
		name, namelen = unsafe.Pointer(&m.name6), unix.SizeofSockaddrInet6
	} else {
		ip4 := addr.IP.To4()
		if ip4 == nil {
			return fmt.Errorf("rtsp: an IPv6 client on an IPv4 socket: %v", addr)
		}
		m.name4 = unix.RawSockaddrInet4{Family: unix.AF_INET}
		copy(m.name4.Addr[:], ip4)
		putPort(&m.name4.Port, addr.Port)
		name, namelen = unsafe.Pointer(&m.name4), unix.SizeofSockaddrInet4
	}
	niov := 0
	for _, msg := range ms {
		niov += len(msg.Buffers)
	}
	m.iovs = m.iovs[:0]
	if cap(m.iovs) < niov {
		m.iovs = make([]unix.Iovec, 0, niov)
	}
	if cap(m.hdrs) < len(ms) {
		m.hdrs = make([]mmsghdr, len(ms))
	}
	m.hdrs = m.hdrs[:len(ms)]
	for i, msg := range ms {
		first := len(m.iovs)
		for _, b := range msg.Buffers {
			var iov unix.Iovec
			if len(b) > 0 {
				iov.Base = &b[0]
			}
			iov.SetLen(len(b))
			m.iovs = append(m.iovs, iov)
		}
		h := &m.hdrs[i]
		*h = mmsghdr{}
		h.hdr.Name = (*byte)(name)
		h.hdr.Namelen = namelen
		if n := len(m.iovs) - first; n > 0 {
			h.hdr.Iov = &m.iovs[first]
			h.hdr.SetIovlen(n)
		}
		if len(msg.OOB) > 0 {
			h.hdr.Control = &msg.OOB[0]
			h.hdr.SetControllen(len(msg.OOB))
		}
	}
	return nil
}

// putPort writes a port in network byte order into a sockaddr's field.
func putPort(p *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// zoneIndex is the interface index of an IPv6 zone, or 0.
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
