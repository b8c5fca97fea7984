package rtsp

import (
	"net"
	"syscall"
	"unsafe"
)

// tcpNotsentLowat is TCP_NOTSENT_LOWAT from linux/tcp.h (Linux 3.12+).
const tcpNotsentLowat = 25

// limitUnsent makes the kernel hold at most n bytes that are not sent yet
// on c, beyond what is in flight (give or take one segment); writes block
// past it, so the backlog of a slow reader stays in camfeed, where it can
// be skipped to a keyframe.
func limitUnsent(c *net.TCPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotsentLowat, n)
	})
}

// siocOutqNSD is SIOCOUTQNSD from linux/sockios.h (Linux 2.6.38+).
const siocOutqNSD = 0x894B

// kernelBacklog returns the bytes in the socket's send queue that have
// not been sent yet (SIOCOUTQNSD, tcp(7)). Bytes in flight are not
// counted: they are on their way, and counting them until acknowledged
// would make every viewer with a long round trip look late.
func kernelBacklog(rc syscall.RawConn) uint64 {
	var n int32
	_ = rc.Control(func(fd uintptr) {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, siocOutqNSD, uintptr(unsafe.Pointer(&n)))
		if errno != 0 {
			n = 0
		}
	})
	return uint64(max(n, 0))
}
