package limits

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Server returns an http.Server for h with these limits. It sets
// ReadHeaderTimeout (the slowloris defence), IdleTimeout and
// MaxHeaderBytes. It leaves ReadTimeout and WriteTimeout at zero on
// purpose: they bound a whole request, and a stream lasts as long as the
// viewer watches. Bodies are bounded by BodyLimit, stream writes by
// StreamWriter's per-write deadline.
func (c Config) Server(h http.Handler) *http.Server {
	s := &http.Server{Handler: h}
	c.Apply(s)
	return s
}

// headerSlop is what net/http adds to MaxHeaderBytes before it refuses a
// request's headers (its bufio slop, server.go initialReadLimitSize).
const headerSlop = 4096

// Apply sets the limits on an existing server (see Server). The server's
// MaxHeaderBytes is max_header_bytes less net/http's 4 KiB of slop, so
// that the request line and headers together may be max_header_bytes
// long and no more, as documented.
func (c Config) Apply(s *http.Server) {
	s.ReadHeaderTimeout = c.ReadHeaderTimeout
	s.IdleTimeout = c.IdleTimeout
	s.MaxHeaderBytes = max(c.MaxHeaderBytes-headerSlop, 1)
}

// Listener caps the connections per address on ln (see ConnLimit).
func (c Config) Listener(ln net.Listener) *ConnLimiter { return ConnLimit(ln, c.MaxConnsPerIP) }

// BodyLimit reads every request body in full before next runs: at most
// max bytes (more is refused with 413), all of it within timeout of the
// headers (else 408). Either refusal closes the connection.
//
// Reading up front is what makes the timeout hold on every path: a
// handler that never reads the body (a 401, a 404, /healthz) would
// otherwise leave net/http to drain it after the handler, with no
// deadline at all, so a client declaring a Content-Length and then
// sending nothing held the connection and its goroutine forever. The
// bodies camfeed takes are small (WHEP offers, API calls), so holding one
// in memory costs little; memory grows only with bytes actually
// received, and ConnLimit bounds how many one address may send at once.
//
// GET and HEAD requests with a body are treated the same way; those
// without one pass untouched, with no read deadline that could cancel a
// stream's context.
func BodyLimit(max int64, timeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > max {
				stopReading(w)
				http.Error(w, "camfeed: request body too large (limit "+strconv.FormatInt(max, 10)+" bytes)", http.StatusRequestEntityTooLarge)
				return
			}
			b, err := readBody(w, r, max, timeout)
			if err != nil {
				stopReading(w)
				BodyError(w, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			next.ServeHTTP(w, r)
		})
	}
}

// readBody reads r's body under a read deadline, which it clears again
// once the body is in: net/http then reads the connection in the
// background to notice a hang-up, and a deadline there would cancel the
// request's context.
func readBody(w http.ResponseWriter, r *http.Request, max int64, timeout time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	if timeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err == nil && timeout > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	return b, err
}

// stopReading makes a refused request's connection close after the
// answer, without reading what is left of its body: net/http would
// otherwise drain up to 256 KiB of it first (in body.Close), with no
// deadline, from a client that may never send it.
func stopReading(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// BodyError answers a failed body read: 413 past the size limit, 408 when
// the client stopped sending, 400 otherwise.
func BodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	w.Header().Set("Connection", "close") // what is left of the body must not be read as a request
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "camfeed: request body too large (limit "+strconv.FormatInt(tooBig.Limit, 10)+" bytes)", http.StatusRequestEntityTooLarge)
	case errors.Is(err, os.ErrDeadlineExceeded):
		http.Error(w, "camfeed: request body too slow", http.StatusRequestTimeout)
	default:
		http.Error(w, "camfeed: cannot read the request body", http.StatusBadRequest)
	}
}

// Reject answers a viewer refused by Viewers.Acquire: 503 with
// Retry-After, and the reason in words.
func Reject(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "camfeed: "+err.Error(), http.StatusServiceUnavailable)
}

// StreamWriter writes a long-lived response (raw H.264, MJPEG, fMP4 over
// HTTP) with a deadline on each write, and flushes after each, so a
// viewer that stops reading is dropped after timeout instead of holding
// its goroutine and buffers forever.
type StreamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// NewStreamWriter wraps w. A zero timeout means no deadline.
func NewStreamWriter(w http.ResponseWriter, timeout time.Duration) *StreamWriter {
	return &StreamWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

// Write writes p and flushes it, within the timeout.
func (s *StreamWriter) Write(p []byte) (int, error) {
	if s.timeout > 0 {
		if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return 0, err
		}
	}
	n, err := s.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}

// DeadlineConn wraps a raw connection (the TCP and unix socket outputs)
// so each Write must complete within timeout.
func DeadlineConn(c net.Conn, timeout time.Duration) net.Conn {
	return &deadlineConn{Conn: c, timeout: timeout}
}

type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.timeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// Admit takes a slot in v for the viewer of feed making r. When the feed
// or the address is full it answers 503 (see Reject) and returns the
// *FullError, which the caller may count; otherwise the caller must call
// release when the stream ends.
func (v *Viewers) Admit(w http.ResponseWriter, r *http.Request, feed string) (release func(), err error) {
	release, err = v.Acquire(feed, RemoteIP(r.RemoteAddr))
	if err != nil {
		Reject(w, err)
		return nil, err
	}
	return release, nil
}

// DeadlineWriter makes every Write of a response finish within timeout
// (0: no deadline), for responses that are not streams but can be large
// or slow to take (recordings, HLS segments): a client that stops
// reading is cut off instead of holding its goroutine and buffers. The
// deadline is armed at each write, so a response that waits before
// writing (an LL-HLS blocking playlist reload) is not cut short.
func DeadlineWriter(w http.ResponseWriter, timeout time.Duration) http.ResponseWriter {
	if timeout <= 0 {
		return w
	}
	return &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}
}

type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
