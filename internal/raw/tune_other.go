//go:build !linux

package raw

import (
	"net"

	"github.com/camfeed/camfeed/internal/limits"
)

// TuneConn prepares a connection that will carry a live stream. Outside
// Linux there is no TCP_NOTSENT_LOWAT; only Nagle is turned off.
func TuneConn(c net.Conn) {
	if tc, ok := limits.TCPConn(c); ok {
		_ = tc.SetNoDelay(true)
	}
}
