package rtsp

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestTwinSocket: the viewers' send-only twin sends from the RTP socket's
// own port, every datagram sent to that port still reaches the RTP socket
// (gortsplib reads publishers' packets there) and none the twin, and
// closing the RTP socket frees the port.
func TestTwinSocket(t *testing.T) {
	for _, tc := range []struct{ network, host string }{{"udp4", "127.0.0.1"}, {"udp6", "::1"}} {
		t.Run(tc.network, func(t *testing.T) {
			sc, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: net.ParseIP(tc.host)})
			if err != nil {
				t.Skipf("no %s loopback here: %v", tc.network, err)
			}
			s := newRTPSocket(sc, true)
			if errors.Is(s.twinErr, unix.ENOPROTOOPT) {
				// qemu-user does not pass SO_ATTACH_REUSEPORT_CBPF on
				// (Linux has it since 4.5); the viewers then send from
				// the RTP socket, as TestUDPSegmentationSendsTheSameDatagrams
				// checks.
				s.Close()
				t.Skipf("no twin here: %v", s.twinErr)
			}
			if s.twin == nil {
				t.Fatalf("no twin: %v", s.twinErr)
			}
			port := sc.LocalAddr().(*net.UDPAddr).Port

			// Out through the twin, from the RTP port.
			recv, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: net.ParseIP(tc.host)})
			if err != nil {
				t.Fatal(err)
			}
			defer recv.Close()
			var m mmsgSender
			msgs := []ipv4.Message{
				{Buffers: [][]byte{[]byte("head"), []byte("-one")}, Addr: recv.LocalAddr()},
				{Buffers: [][]byte{[]byte("two")}, Addr: recv.LocalAddr()},
			}
			if n, err := s.send(msgs, &m); n != 2 || err != nil {
				t.Fatalf("send: %d, %v", n, err)
			}
			buf := make([]byte, 64)
			for _, want := range []string{"head-one", "two"} {
				_ = recv.SetReadDeadline(time.Now().Add(testsupport.Patience))
				n, from, err := recv.ReadFromUDP(buf)
				if err != nil {
					t.Fatal(err)
				}
				if string(buf[:n]) != want || from.Port != port {
					t.Fatalf("got %q from port %d, want %q from %d", buf[:n], from.Port, want, port)
				}
			}

			// In: all to the RTP socket, from many source ports (the
			// group would spread them by their addresses).
			const senders = 64
			for i := range senders {
				c, err := net.DialUDP(tc.network, nil, sc.LocalAddr().(*net.UDPAddr))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write([]byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			for i := range senders {
				_ = sc.SetReadDeadline(time.Now().Add(testsupport.Patience))
				if _, _, err := sc.ReadFrom(buf); err != nil {
					t.Fatalf("datagram %d of %d to the RTP port: %v", i, senders, err)
				}
			}
			rc, _ := s.twin.SyscallConn()
			var queued int
			_ = rc.Control(func(fd uintptr) { queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
			if queued != 0 {
				t.Errorf("the twin holds %d bytes that were sent to the RTP port", queued)
			}

			// Sharing the port is not open to any socket that asks: a
			// second camfeed still finds the port taken.
			if c, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: net.ParseIP(tc.host), Port: port}); err == nil {
				c.Close()
				t.Error("another socket could bind the RTP port")
			}

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			again, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: net.ParseIP(tc.host), Port: port})
			if err != nil {
				t.Fatalf("the port is still held after Close: %v", err)
			}
			again.Close()
		})
	}
}

// TestMmsgSender: sendmmsg(2) as the twin makes it, on any UDP socket, so
// that its message layout is checked where the twin cannot be had (under
// qemu-arm, for 32-bit Raspberry Pi OS): several messages of several
// buffers, a control message, each arriving whole and in order.
func TestMmsgSender(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "test")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var m mmsgSender
	oob := gsoControl(nil, 3) // three-byte segments, where the kernel segments
	for round := range 3 {
		msgs := []ipv4.Message{
			{Buffers: [][]byte{[]byte("ab"), []byte("c")}, Addr: recv.LocalAddr()},
			{Buffers: [][]byte{[]byte("defghi")}, OOB: oob, Addr: recv.LocalAddr()},
			{Buffers: [][]byte{[]byte("j"), nil, []byte("kl")}, Addr: recv.LocalAddr()},
		}
		want := []string{"abc", "def", "ghi", "jkl"}
		if n, err := m.send(rc, msgs); err != nil || n != len(msgs) {
			if errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOPROTOOPT) {
				msgs[1].OOB = nil // no segmentation here: the six bytes as one
				want = []string{"abc", "defghi", "jkl"}
				n, err = m.send(rc, msgs)
			}
			if err != nil || n != len(msgs) {
				t.Fatalf("round %d: sent %d of %d: %v", round, n, len(msgs), err)
			}
		}
		buf := make([]byte, 64)
		for _, w := range want {
			_ = recv.SetReadDeadline(time.Now().Add(testsupport.Patience))
			n, err := recv.Read(buf)
			if err != nil {
				t.Fatalf("round %d: waiting for %q: %v", round, w, err)
			}
			if string(buf[:n]) != w {
				t.Fatalf("round %d: got %q, want %q", round, buf[:n], w)
			}
		}
	}
}
