package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A segmented send reaches a groConn whole and is read back as the
// datagrams it was cut into; a plain datagram is read as itself.
func TestGROConnSplits(t *testing.T) {
	pc, err := listenGRO("udp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no UDP_GRO here: %v", err)
	}
	defer pc.Close()
	to := pc.LocalAddr().(*net.UDPAddr)
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()

	payload := make([]byte, 250)
	for i := range payload {
		payload[i] = byte(i)
	}
	hdr := int(unsafe.Sizeof(syscall.Cmsghdr{}))
	oob := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[hdr:], 100)
	if _, _, err := snd.WriteMsgUDP(payload, oob, to); err != nil {
		t.Skipf("no UDP_SEGMENT here: %v", err)
	}
	if _, err := snd.WriteToUDP([]byte("plain"), to); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{payload[:100], payload[100:200], payload[200:], []byte("plain")}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for i, w := range want {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Errorf("datagram %d: %d bytes, want %d", i, n, len(w))
		}
		if g := pc.(*groConn); i == 0 && (g.size != 100 || len(g.segs) != 150) {
			t.Errorf("the segmented send was not taken whole: segment size %d, %d bytes left", g.size, len(g.segs))
		}
		if from.String() != snd.LocalAddr().String() {
			t.Errorf("datagram %d from %v, want %v", i, from, snd.LocalAddr())
		}
	}
}
