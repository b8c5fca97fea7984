package hub

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// socketPair returns the two ends of a connected unix stream socket.
func socketPair() (*net.UnixConn, *net.UnixConn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	conn := func(fd int) (*net.UnixConn, error) {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			return nil, err
		}
		return c.(*net.UnixConn), nil
	}
	a, err := conn(fds[0])
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := conn(fds[1])
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// TestTryWriter: a write takes what the socket holds and never blocks;
// a full socket takes 0 bytes with no error, and a closed peer is an
// error.
func TestTryWriter(t *testing.T) {
	a, b, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := NewTryWriter(rc)
	buf := make([]byte, 64<<10)
	total, full := 0, false
	for range 10000 { // the socket's buffer is a few hundred KiB at most
		n, err := w.Write(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
		total += n
		if n == 0 {
			full = true
			break
		}
	}
	if !full || total == 0 {
		t.Fatalf("wrote %d bytes, full %v: want some, then a full socket", total, full)
	}
	b.Close()
	if _, err := w.Write(buf); err == nil {
		t.Error("write to a closed peer: no error")
	}
}
