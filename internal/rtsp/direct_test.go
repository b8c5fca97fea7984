package rtsp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// tcpTestViewer returns a TCP viewer that writes its own packets to one
// end of a loopback connection, and the other end. With small, both ends'
// socket buffers are as small as the kernel allows, so that a unit of a
// few tens of KB does not go at once.
func tcpTestViewer(t *testing.T, small bool) (*viewer, net.Conn) {
	t.Helper()
	var lc net.ListenConfig
	var dialer net.Dialer
	if small {
		shrink := func(opt int) func(_, _ string, c syscall.RawConn) error {
			return func(_, _ string, c syscall.RawConn) error {
				return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 2048) })
			}
		}
		lc.Control, dialer.Control = shrink(syscall.SO_SNDBUF), shrink(syscall.SO_RCVBUF)
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := dialer.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	s := New(Config{}, door.Unlimited(newTestFeeds(nil)), nil, nil, testsupport.Logger(t))
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{s: s, feed: &feed{s: s, name: "cam"}, conn: newTrackedConn(sc, raw, nil), label: "test",
		direct: true, channel: 2, ssrc: 0x11223344, seq: 65534, cancel: func() {}}
	return v, client
}

// TestWriteDirectFrames: a unit written by a viewer, laid out in one
// buffer (a picture) or as its headers and the shared payloads (a unit
// larger than wireChunk), by the viewer's goroutine or without blocking
// by the feed's fan-out (the rest, if the socket did not take it all,
// then by the viewer's goroutine), reaches the client as the same
// interleaved RTP packets: the viewer's channel, sequence numbers,
// timestamp and SSRC, the marker on the last packet, the payloads byte
// for byte.
func TestWriteDirectFrames(t *testing.T) {
	_, _, big := udpTestViewer(t)
	small := &rtpUnit{}
	small.packetize([][]byte{bytes.Repeat([]byte{0x41, 9}, 3000)})
	large := &rtpUnit{} // within wireChunk, more than small socket buffers take at once
	large.packetize([][]byte{bytes.Repeat([]byte{0x41, 9}, 14000)})
	if n := 16*large.packets() + len(large.buf); n > wireChunk {
		t.Fatalf("the large unit is %d bytes, more than wireChunk", n)
	}
	if n := 16*big.packets() + len(big.buf); n <= wireChunk {
		t.Fatalf("the big unit is %d bytes, within wireChunk", n)
	}
	units := []struct {
		name string
		u    *rtpUnit
		ts   uint32
	}{{"one buffer", small, 1000}, {"buffers", big, 4000}, {"one buffer again", small, 7000}, {"one large buffer", large, 9000}}
	for _, mode := range []struct {
		name          string
		fanned, small bool
	}{{"viewer", false, false}, {"fan-out", true, false}, {"fan-out, small socket buffers", true, true}} {
		v, client := tcpTestViewer(t, mode.small)
		seq := v.seq
		halfWritten := false
		for _, tc := range units {
			name := mode.name + ": " + tc.name
			n := 16*tc.u.packets() + len(tc.u.buf)
			now := time.Now()
			v.fanned = mode.fanned
			v.writeDirect(tc.u, tc.ts, now, now, now)
			v.fanned = false
			done := make(chan []byte)
			go func() { // read only now: with small buffers, the unit did not go whole
				b := make([]byte, n)
				if _, err := io.ReadFull(client, b); err != nil {
					t.Errorf("%s: read: %v", name, err)
				}
				done <- b
			}()
			if v.rest > 0 {
				halfWritten = halfWritten || v.restLeft == leftRest
				v.finishDirect()
			}
			b := <-done
			for i := range tc.u.packets() {
				p := tc.u.payload(i)
				if len(b) < 16+len(p) {
					t.Fatalf("%s: packet %d: %d bytes left", name, i, len(b))
				}
				h := b[:16]
				marker := byte(payloadType)
				if i == tc.u.packets()-1 {
					marker |= 0x80
				}
				if h[0] != '$' || h[1] != 2 || int(binary.BigEndian.Uint16(h[2:])) != 12+len(p) || h[4] != 0x80 || h[5] != marker ||
					binary.BigEndian.Uint16(h[6:]) != seq || binary.BigEndian.Uint32(h[8:]) != tc.ts || binary.BigEndian.Uint32(h[12:]) != 0x11223344 {
					t.Fatalf("%s: packet %d: header % x (seq %d)", name, i, h, seq)
				}
				if !bytes.Equal(b[16:16+len(p)], p) {
					t.Fatalf("%s: packet %d: payload differs", name, i)
				}
				b = b[16+len(p):]
				seq++
			}
			if v.conn.rtpBytes.Load() != v.queued {
				t.Fatalf("%s: %d RTP bytes counted as written, %d queued", name, v.conn.rtpBytes.Load(), v.queued)
			}
			if !v.conn.wmu.TryLock() {
				t.Fatalf("%s: the connection is still locked", name)
			}
			v.conn.wmu.Unlock()
		}
		if mode.small && !halfWritten {
			t.Errorf("%s: no unit was left half written: the case is not tested", mode.name)
		}
	}
}

// TestArmDeadline: a viewer's writes keep the connection's write
// deadline directWriteTimeout ahead without setting it for every write,
// and a shorter one that gortsplib set for its own write (its
// WriteTimeout) is seen and moved on.
func TestArmDeadline(t *testing.T) {
	v, _ := tcpTestViewer(t, false)
	c := v.conn
	now := time.Now()
	c.armDeadline(now)
	if got := time.Duration(c.deadline.Load() - now.UnixNano()); got != directWriteTimeout {
		t.Fatalf("first write: deadline %v ahead, want %v", got, directWriteTimeout)
	}
	later := now.Add(directWriteTimeout / 4)
	c.armDeadline(later)
	if got := time.Duration(c.deadline.Load() - now.UnixNano()); got != directWriteTimeout {
		t.Fatalf("a write soon after: deadline moved to %v after the first write, want it left at %v", got, directWriteTimeout)
	}
	// gortsplib, with a WriteTimeout of 1 s, writes an RTCP report.
	if err := c.SetWriteDeadline(later.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.armDeadline(later)
	if got := time.Duration(c.deadline.Load() - later.UnixNano()); got != directWriteTimeout {
		t.Fatalf("after gortsplib set a 1 s deadline: deadline %v ahead, want %v", got, directWriteTimeout)
	}
	c.armDeadline(later.Add(directWriteTimeout / 2))
	if got := time.Duration(c.deadline.Load() - later.UnixNano()); got != 3*directWriteTimeout/2 {
		t.Fatalf("half the timeout later: deadline %v ahead of the re-arm, want %v", got, 3*directWriteTimeout/2)
	}
}
