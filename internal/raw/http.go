package raw

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
)

// HTTP serves GET /stream.h264 (the default feed), GET /{feed}/stream.h264,
// and GET / for clients that do not ask for HTML (curl, ffplay, the seed's
// users).
type HTTP struct {
	Door        *door.Door
	DefaultFeed string
	Log         *slog.Logger
	Observe     Observe
	// WriteTimeout is how long one write to a viewer may block
	// (limits.write_timeout; 0: DefaultWriteTimeout).
	WriteTimeout time.Duration

	fanouts hub.Fanouts
}

// Register mounts /stream.h264 and /{feed}/stream.h264 on mux.
func (h *HTTP) Register(mux *route.Mux) {
	mux.Handle("GET /stream.h264", route.ReadOf(h.defaultFeed), h.Default())
	mux.HandleFunc("GET /{feed}/stream.h264", route.Read, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, r.PathValue("feed")) })
}

func (h *HTTP) defaultFeed(*http.Request) string { return h.DefaultFeed }

// Default serves the default feed's stream: /stream.h264, and GET / for
// clients that are not browsers.
func (h *HTTP) Default() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, h.DefaultFeed) })
}

func (h *HTTP) serve(w http.ResponseWriter, r *http.Request, feed string) {
	if r.Method == http.MethodHead {
		if _, ok := h.Door.Feed(feed); !ok {
			http.Error(w, "camfeed: no such feed", http.StatusNotFound)
			return
		}
		streamHeaders(w)
		return
	}
	s, err := h.Door.Enter(door.WhoHTTP(r, feed, door.HTTP))
	if err != nil {
		door.Refuse(w, err)
		return
	}
	streamHeaders(w)
	if r.ProtoMajor == 1 {
		if conn, ok := hijack(w); ok {
			s.Leave(Reason(h.serveConn(r.Context(), conn, w.Header(), s, feed)))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // headers now: the client knows it is connected before the first frame
	err = Serve(r.Context(), s.Sub, w, rc.Flush, rc.SetWriteDeadline, h.WriteTimeout, h.Observe.get(feed, door.HTTP))
	s.Leave(Reason(err))
}

// hijack takes an HTTP/1 connection over from net/http. Through net/http
// every picture costs three system calls: the chunk header, the picture
// (too large for the 4 KiB buffer), and the chunk's end at the flush. On
// the bare connection it is one.
func hijack(w http.ResponseWriter) (net.Conn, bool) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	if brw.Writer.Buffered() > 0 {
		_ = brw.Flush()
	}
	return conn, true
}

// serveConn streams on a hijacked connection: the response head as
// net/http would have written it (status, the headers set so far, no
// length: the body ends when the connection closes), then one write per
// access unit.
func (h *HTTP) serveConn(ctx context.Context, conn net.Conn, hdr http.Header, s *door.Session, feed string) error {
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{}) // the server's read and write timeouts do not apply to a stream
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	_ = hdr.Write(&b)
	b.WriteString("\r\n")
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout(h.WriteTimeout)))
	if _, err := conn.Write(b.Bytes()); err != nil {
		return err
	}
	// net/http no longer watches the connection: serveBare notices a
	// viewer that hangs up.
	return serveBare(ctx, conn, s, &h.fanouts, h.WriteTimeout, h.Observe.get(feed, door.HTTP))
}

func streamHeaders(w http.ResponseWriter) {
	hdr := w.Header()
	hdr.Set("Content-Type", "video/h264")
	hdr.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	hdr.Set("X-Content-Type-Options", "nosniff")
}

// Reason puts the end of a raw stream in words for the viewer-left line.
// A viewer closing its player is the normal end of a stream, not an
// error: say so plainly.
func Reason(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "viewer stopped reading (write timed out)"
	case err != nil && !isDisconnect(err):
		return err.Error()
	}
	return "viewer closed the connection"
}

// isDisconnect reports the errors a write gets when the viewer went away
// or stopped reading for longer than the write timeout.
func isDisconnect(err error) bool {
	return err == nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled)
}
