package hub

import (
	"errors"
	"syscall"
)

// TryWriter writes to a socket without ever blocking, for a Fanout's push
// functions: one write(2) of what the socket takes at once. It is made
// once per connection, with its callback, so that a write allocates
// nothing. Not safe for concurrent use.
type TryWriter struct {
	rc  syscall.RawConn
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// NewTryWriter returns a TryWriter for the socket under rc.
func NewTryWriter(rc syscall.RawConn) *TryWriter {
	w := &TryWriter{rc: rc}
	w.fn = func(fd uintptr) bool {
		w.n, w.err = syscall.Write(int(fd), w.buf)
		return true // never wait for the socket: what is left is the caller's
	}
	return w
}

// Write writes what the socket takes of b at once and returns how much
// that was (0 when its buffer is full). The error is that of a failed
// connection only, never EAGAIN.
func (w *TryWriter) Write(b []byte) (int, error) {
	w.buf = b
	err := w.rc.Write(w.fn)
	w.buf = nil
	if err == nil && w.err != nil && !errors.Is(w.err, syscall.EAGAIN) && !errors.Is(w.err, syscall.EINTR) {
		err = w.err
	}
	return max(w.n, 0), err
}
