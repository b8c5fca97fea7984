package raw

import (
	"net"
	"syscall"

	"github.com/camfeed/camfeed/internal/limits"
)

// notSentLowat caps the bytes a stream connection may hold unsent in the
// kernel (TCP_NOTSENT_LOWAT, Linux 3.12+). Without it the kernel's send
// buffer, autotuned up to megabytes, would hold seconds of old video for a
// slow viewer where the hub cannot skip it; with it, a write blocks as soon
// as the viewer falls behind, and the hub skips the viewer ahead. In-flight
// data (the congestion window) is not limited, so fast links stay fast.
const notSentLowat = 16 << 10

const tcpNotSentLowat = 25 // linux/tcp.h

// TuneConn prepares a connection that will carry a live stream.
func TuneConn(c net.Conn) {
	tc, ok := limits.TCPConn(c)
	if !ok {
		return
	}
	_ = tc.SetNoDelay(true)
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, notSentLowat)
	})
}
