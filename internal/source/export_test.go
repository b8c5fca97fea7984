package source

import (
	"net"
	"testing"
)

// SetReady makes t call ready with its bound address (tests listen on
// port 0).
func SetReady(t *TCPListen, ready func(net.Addr)) { t.ready = ready }

// TakeSlot is takeSlot for tests outside the package.
func TakeSlot(t *testing.T, addr string) net.Conn { return takeSlot(t, addr) }
