//go:build !linux

package rtsp

import (
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/net/ipv4"
)

// Outside Linux the viewers send from the RTP socket itself.
func openTwin(*net.UDPConn) (*os.File, error) {
	return nil, errors.New("only on Linux")
}

type mmsgSender struct{ v6 bool }

func (*mmsgSender) send(syscall.RawConn, []ipv4.Message) (int, error) {
	return 0, errors.New("only on Linux")
}
