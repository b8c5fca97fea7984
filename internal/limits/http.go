package limits

import (
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

// Apply sets the limits on an existing server (see Server).
func (c Config) Apply(s *http.Server) {
	s.ReadHeaderTimeout = c.ReadHeaderTimeout
	s.IdleTimeout = c.IdleTimeout
	s.MaxHeaderBytes = c.MaxHeaderBytes
}

// BodyLimit caps request bodies at max bytes and makes each read of a body
// wait at most idle. A body announced larger than max is refused with 413
// before the handler runs; one that grows past it fails the handler's
// read with *http.MaxBytesError (BodyError turns that into 413). GET and
// HEAD requests are untouched: a read deadline there would cancel a
// stream's context.
func BodyLimit(max int64, idle time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > max {
				http.Error(w, "camfeed: request body too large (limit "+strconv.FormatInt(max, 10)+" bytes)", http.StatusRequestEntityTooLarge)
				return
			}
			rc := http.NewResponseController(w)
			b := &idleBody{r: http.MaxBytesReader(w, r.Body, max), rc: rc, idle: idle}
			r.Body = b
			next.ServeHTTP(w, r)
			b.clear()
		})
	}
}

// idleBody renews the connection's read deadline before each read and
// clears it at the end of the body, so that the deadline cannot cancel
// the rest of the request (the server reads ahead to notice a hang-up).
type idleBody struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	cleared bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.idle > 0 && !b.cleared {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	if err != nil {
		b.clear()
	}
	return n, err
}

func (b *idleBody) Close() error { return b.r.Close() }

func (b *idleBody) clear() {
	if b.idle > 0 && !b.cleared {
		b.cleared = true
		b.rc.SetReadDeadline(time.Time{})
	}
}

// BodyError answers a failed body read: 413 past the size limit, 408 when
// the client stopped sending, 400 otherwise.
func BodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "camfeed: request body too large (limit "+strconv.FormatInt(tooBig.Limit, 10)+" bytes)", http.StatusRequestEntityTooLarge)
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
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
