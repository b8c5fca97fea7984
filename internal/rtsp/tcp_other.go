//go:build !linux

package rtsp

import (
	"net"
	"syscall"
)

// limitUnsent bounds the kernel's send buffer where TCP_NOTSENT_LOWAT is
// not available. This also bounds bytes in flight, so it is a few times n:
// enough for a LAN, small enough that a slow reader's backlog stays in
// camfeed, where it can be skipped to a keyframe.
func limitUnsent(c *net.TCPConn, n int) {
	_ = c.SetWriteBuffer(4 * n)
}

// kernelBacklog is not known here: bytes the kernel took count as
// delivered.
func kernelBacklog(syscall.RawConn) uint64 { return 0 }
