package rtsp

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// tcpTestViewer returns a TCP viewer that writes its own packets to one
// end of a loopback connection, and the other end.
func tcpTestViewer(t *testing.T) (*viewer, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
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
	v := &viewer{s: s, feed: &feed{s: s, name: "cam"}, conn: newTrackedConn(sc, nil, nil), label: "test",
		direct: true, channel: 2, ssrc: 0x11223344, seq: 65534, cancel: func() {}}
	return v, client
}

// TestWriteDirectFrames: a unit written by a viewer, laid out in one
// buffer (a picture) or as its headers and the shared payloads (a unit
// larger than wireChunk), reaches the client as the same interleaved RTP
// packets: the viewer's channel, sequence numbers, timestamp and SSRC,
// the marker on the last packet, the payloads byte for byte.
func TestWriteDirectFrames(t *testing.T) {
	_, _, big := udpTestViewer(t)
	small := &rtpUnit{}
	small.packetize([][]byte{bytes.Repeat([]byte{0x41, 9}, 3000)})
	if n := 16*small.packets() + len(small.buf); n > wireChunk {
		t.Fatalf("the small unit is %d bytes, more than wireChunk", n)
	}
	if n := 16*big.packets() + len(big.buf); n <= wireChunk {
		t.Fatalf("the big unit is %d bytes, within wireChunk", n)
	}
	v, client := tcpTestViewer(t)
	seq := v.seq
	for _, tc := range []struct {
		name string
		u    *rtpUnit
		ts   uint32
	}{{"one buffer", small, 1000}, {"buffers", big, 4000}, {"one buffer again", small, 7000}} {
		done := make(chan []byte)
		n := 16*tc.u.packets() + len(tc.u.buf)
		go func() {
			b := make([]byte, n)
			_, err := io.ReadFull(client, b)
			if err != nil {
				t.Errorf("%s: read: %v", tc.name, err)
			}
			done <- b
		}()
		now := time.Now()
		v.writeDirect(tc.u, tc.ts, now, now, now)
		b := <-done
		for i := range tc.u.packets() {
			p := tc.u.payload(i)
			if len(b) < 16+len(p) {
				t.Fatalf("%s: packet %d: %d bytes left", tc.name, i, len(b))
			}
			h := b[:16]
			last := i == tc.u.packets()-1
			marker := byte(payloadType)
			if last {
				marker |= 0x80
			}
			if h[0] != '$' || h[1] != 2 || int(binary.BigEndian.Uint16(h[2:])) != 12+len(p) || h[4] != 0x80 || h[5] != marker ||
				binary.BigEndian.Uint16(h[6:]) != seq || binary.BigEndian.Uint32(h[8:]) != tc.ts || binary.BigEndian.Uint32(h[12:]) != 0x11223344 {
				t.Fatalf("%s: packet %d: header % x (seq %d)", tc.name, i, h, seq)
			}
			if !bytes.Equal(b[16:16+len(p)], p) {
				t.Fatalf("%s: packet %d: payload differs", tc.name, i)
			}
			b = b[16+len(p):]
			seq++
		}
		if v.conn.rtpBytes.Load() != v.queued {
			t.Fatalf("%s: %d RTP bytes counted as written, %d queued", tc.name, v.conn.rtpBytes.Load(), v.queued)
		}
	}
}

// TestArmDeadline: a viewer's writes keep the connection's write
// deadline directWriteTimeout ahead without setting it for every write,
// and a shorter one that gortsplib set for its own write (its
// WriteTimeout) is seen and moved on.
func TestArmDeadline(t *testing.T) {
	v, _ := tcpTestViewer(t)
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
