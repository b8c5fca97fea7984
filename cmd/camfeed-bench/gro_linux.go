package main

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// UDP generic receive offload (Linux 5.0+, udp(7) UDP_GRO) for the
// rtsp-udp-gro viewers.
//
// On loopback the kernel delivers camfeed's datagrams into the viewers'
// sockets on camfeed's own thread, so every datagram's receive (cutting
// camfeed's segmented sends apart again, queueing each, freeing each) is
// charged to camfeed: 37-40 % of its CPU at 100 RTSP/UDP viewers, where
// RTSP over TCP carries the same bytes in 64 KB loopback segments. A
// socket with UDP_GRO takes a segmented send whole, as one buffer and the
// segment size, so the receive is done once per send, as TCP's is. The
// datagrams are the same; groConn hands gortsplib's client one at a time.

// groConn is a UDP socket with UDP_GRO that reads like one without it.
type groConn struct {
	*net.UDPConn
	buf, oob []byte
	segs     []byte // what is left of the last read
	size     int    // its segment size
	from     net.Addr
}

func listenGRO(network, address string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	uc := pc.(*net.UDPConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
	}); err != nil || serr != nil {
		uc.Close()
		return nil, fmt.Errorf("UDP_GRO: %v %v", err, serr)
	}
	return &groConn{UDPConn: uc, buf: make([]byte, 1<<16), oob: make([]byte, unix.CmsgSpace(4))}, nil
}

// ReadFrom returns the next datagram: the next segment of the last
// coalesced read, or a new read's first.
func (c *groConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if len(c.segs) == 0 {
		n, oobn, _, from, err := c.ReadMsgUDP(c.buf, c.oob)
		if err != nil {
			return 0, nil, err
		}
		c.segs, c.size, c.from = c.buf[:n], groSize(c.oob[:oobn]), from
		if c.size <= 0 {
			c.size = n
		}
	}
	seg := c.segs[:min(c.size, len(c.segs))]
	c.segs = c.segs[len(seg):]
	return copy(p, seg), c.from, nil
}

// groSize is the segment size in a UDP_GRO control message, or 0.
func groSize(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 2 {
			if len(m.Data) >= 4 {
				return int(binary.NativeEndian.Uint32(m.Data))
			}
			return int(binary.NativeEndian.Uint16(m.Data))
		}
	}
	return 0
}
