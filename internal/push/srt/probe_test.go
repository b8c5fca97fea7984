package srt

import (
	"net"
	"testing"
)

// FuzzIsHandshake: whatever comes back to probe's socket is read without
// a panic, and only an SRT handshake counts as an answer.
func FuzzIsHandshake(f *testing.F) {
	c, err := net.Dial("udp", "127.0.0.1:9") // connected UDP sends nothing until written
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	hs, err := induction(c)
	if err != nil {
		f.Fatal(err)
	}
	if !isHandshake(c.RemoteAddr(), hs) {
		f.Fatal("the induction packet does not read as a handshake")
	}
	f.Add(hs)
	f.Add(hs[:16])
	f.Add([]byte{})
	data := append([]byte{}, hs...)
	data[0] &^= 0x80 // a data packet, not a control one
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		got := isHandshake(c.RemoteAddr(), b)
		if got && (len(b) < 16 || b[0]&0x80 == 0) {
			t.Errorf("%x read as a handshake", b)
		}
	})
}
