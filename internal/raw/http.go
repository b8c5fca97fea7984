package raw

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/logx"
)

// HTTP serves GET /stream.h264 (the default feed), GET /{feed}/stream.h264,
// and GET / for clients that do not ask for HTML (curl, ffplay, the seed's
// users).
type HTTP struct {
	Feeds       Feeds
	DefaultFeed string
	Log         *slog.Logger
	Observe     Observe
	// WriteTimeout is how long one write to a viewer may block
	// (limits.write_timeout; 0: DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Lines, if set, rate-limits the per-viewer lines, which any client
	// can make camfeed write at will.
	Lines *logx.RateLog
}

// Register mounts /stream.h264 and /{feed}/stream.h264 on mux.
func (h *HTTP) Register(mux *http.ServeMux) {
	mux.Handle("GET /stream.h264", h.Default())
	mux.HandleFunc("GET /{feed}/stream.h264", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, r.PathValue("feed")) })
}

// Default serves the default feed's stream: /stream.h264, and GET / for
// clients that are not browsers.
func (h *HTTP) Default() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, h.DefaultFeed) })
}

func (h *HTTP) serve(w http.ResponseWriter, r *http.Request, feed string) {
	hb, ok := h.Feeds.Hub(feed)
	if !ok {
		http.Error(w, "no feed named "+feed, http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "video/h264")
	hdr.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // headers now: the client knows it is connected before the first frame
	sub := hb.Subscribe(hub.SubOptions{Output: "http"})
	defer sub.Close()
	start := time.Now()
	err := Serve(r.Context(), sub, w, rc.Flush, rc.SetWriteDeadline, h.WriteTimeout, h.Observe.get(feed, "http"))
	st := sub.Stats()
	// A viewer closing its player is the normal end of a stream, not an
	// error: say so plainly, with what it got.
	reason := "viewer closed the connection"
	if err != nil && !isDisconnect(err) {
		reason = err.Error()
	}
	viewerLine(r.Context(), h.Log, h.Lines, slog.LevelInfo, "http viewer left", "feed", feed, "remote", r.RemoteAddr, "watched", time.Since(start).Round(time.Millisecond).String(),
		"bytes", st.Bytes, "skips", st.Skips, "reason", reason)
}

// viewerLine writes a per-viewer line through lines when set.
func viewerLine(ctx context.Context, log *slog.Logger, lines *logx.RateLog, level slog.Level, msg string, attrs ...any) {
	if lines != nil {
		lines.Log(ctx, level, msg, attrs...)
		return
	}
	log.Log(ctx, level, msg, attrs...)
}

// isDisconnect reports the errors a write gets when the viewer went away
// or stopped reading for longer than the write timeout.
func isDisconnect(err error) bool {
	return err == nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled)
}
