package rtsp

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestUDPSegmentationSendsTheSameDatagrams sends an access unit of every
// packet shape (small single NAL units, a long run of FU-As with a short
// last one, a second shorter FU-A run) to a UDP socket, with the kernel's
// segmentation and without it, and checks that the receiver gets exactly
// one datagram per RTP packet, in order, each header and payload intact.
func TestUDPSegmentationSendsTheSameDatagrams(t *testing.T) {
	for _, twin := range []bool{true, false} {
		t.Run(map[bool]string{true: "twin", false: "RTP socket"}[twin], func(t *testing.T) {
			v, recv, u := udpTestViewer(t)
			if !twin && v.udp.twin != nil {
				// As where the twin cannot be had (twin_linux.go).
				v.udp.twin.Close()
				v.udp.twin = nil
			}
			sendsTheSameDatagrams(t, v, recv, u)
		})
	}
}

func sendsTheSameDatagrams(t *testing.T, v *viewer, recv *net.UDPConn, u *rtpUnit) {
	for _, gso := range []bool{true, false} {
		v.udp.noGSO.Store(!gso)
		first := v.seq
		v.sendUDP(u, 9000)
		if v.needKey {
			t.Fatalf("gso %v: the send failed", gso)
		}
		if gso && v.udp.gso() && len(v.msgs) >= u.packets() {
			t.Errorf("%d packets went in %d messages: no run was segmented", u.packets(), len(v.msgs))
		}
		t.Logf("gso %v (in use: %v): %d packets in %d messages", gso, v.udp.gso(), u.packets(), len(v.msgs))
		buf := make([]byte, 2048)
		for i := range u.packets() {
			_ = recv.SetReadDeadline(time.Now().Add(testsupport.Patience))
			n, err := recv.Read(buf)
			if err != nil {
				t.Fatalf("gso %v: packet %d of %d: %v", gso, i, u.packets(), err)
			}
			d := buf[:n]
			if n < 12 || !bytes.Equal(d[12:], u.payload(i)) {
				t.Fatalf("gso %v: datagram %d is %d bytes, want the %d-byte payload of packet %d behind a header", gso, i, n, len(u.payload(i)), i)
			}
			if seq := binary.BigEndian.Uint16(d[2:]); seq != first+uint16(i) {
				t.Fatalf("gso %v: datagram %d has sequence number %d, want %d", gso, i, seq, first+uint16(i))
			}
			if marker := d[1]&0x80 != 0; marker != (i == u.packets()-1) {
				t.Fatalf("gso %v: datagram %d: marker %v", gso, i, marker)
			}
			if ts, ssrc := binary.BigEndian.Uint32(d[4:]), binary.BigEndian.Uint32(d[8:]); ts != 9000 || ssrc != 0x11223344 {
				t.Fatalf("gso %v: datagram %d: timestamp %d, SSRC %x", gso, i, ts, ssrc)
			}
		}
	}
}
