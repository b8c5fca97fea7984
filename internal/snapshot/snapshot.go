// Package snapshot serves a feed's latest picture: GET /{feed}/snapshot.jpg
// decodes it with ffmpeg (from the newest keyframe through the newest
// unit, so the picture is the newest there is, not up to a GOP old), and
// ?keyframe=1 returns the newest keyframe as a one-frame MP4 that needs
// no decoding on the Pi. JPEGs are cached briefly, so a dashboard that
// polls every second costs one decode a second whatever the number of
// dashboards.
package snapshot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/clip"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
)

// DefaultCacheFor is how long a JPEG is served again before a new decode.
const DefaultCacheFor = time.Second

// Limits on decoding.
const (
	// maxDecoders bounds ffmpeg processes at once, over all feeds: a Pi
	// has four cores and a camera to serve.
	maxDecoders = 2
	// decodeTimeout bounds one ffmpeg run.
	decodeTimeout = 10 * time.Second
)

// Config sets up snapshots.
type Config struct {
	// FFmpeg is the ffmpeg binary; "" looks it up on PATH at each miss,
	// so installing ffmpeg needs no restart.
	FFmpeg string
	// CacheFor is how long a JPEG is reused (default 1 s).
	CacheFor time.Duration
}

// Server serves snapshots.
type Server struct {
	cfg  Config
	door *door.Door
	log  *slog.Logger
	sem  chan struct{}

	mu     sync.Mutex
	cache  map[string]*entry
	decode func(ctx context.Context, ffmpeg string, units []*h264.AccessUnit) ([]byte, error) // tests count calls
}

// entry is one feed's cached JPEG. Its mutex is held while decoding, so
// concurrent requests wait for one decode and share it.
type entry struct {
	mu   sync.Mutex
	jpeg []byte
	unit *h264.AccessUnit // the unit shown
	made time.Time
}

// New returns a snapshot server whose requests enter through d.
func New(cfg Config, d *door.Door, log *slog.Logger) *Server {
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = DefaultCacheFor
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, door: d, log: log, sem: make(chan struct{}, maxDecoders),
		cache: make(map[string]*entry), decode: decodeJPEG,
	}
}

// Register adds GET /{feed}/snapshot.jpg to mux.
func (s *Server) Register(mux *route.Mux) {
	mux.HandleFunc("GET /{feed}/snapshot.jpg", route.Read, s.handle)
}

// ErrNoFFmpeg is returned when ffmpeg is not installed.
var ErrNoFFmpeg = errors.New("snapshot.jpg needs ffmpeg: install ffmpeg (sudo apt install ffmpeg), or ask for snapshot.jpg?keyframe=1, an MP4 of the latest keyframe")

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	feed := r.PathValue("feed")
	se, err := s.door.Admit(door.WhoHTTP(r, feed, door.Snapshot))
	if err != nil {
		door.Refuse(w, err)
		return
	}
	n, reason := s.serve(w, r, feed, se.Hub())
	se.Sent(n)
	se.Leave(reason)
}

// serve answers one snapshot request; it returns the bytes sent and the
// outcome in words.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, feed string, h *hub.Hub) (int, string) {
	key, newest := h.Latest()
	if key == nil {
		http.Error(w, "no video yet: the feed has not sent a keyframe", http.StatusServiceUnavailable)
		return 0, "no video yet"
	}
	if v := r.URL.Query().Get("keyframe"); v == "1" || v == "true" {
		return s.serveKeyframe(w, feed, key), "keyframe sent"
	}
	jpeg, unit, err := s.snapshot(r.Context(), feed, h, newest)
	switch {
	case errors.Is(err, ErrNoFFmpeg):
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return 0, "no ffmpeg"
	case errors.Is(err, clip.ErrNoVideo):
		http.Error(w, "no video yet: the feed has not sent a keyframe", http.StatusServiceUnavailable)
		return 0, "no video yet"
	case err != nil:
		if r.Context().Err() == nil {
			s.log.Warn("snapshot: decode", "feed", feed, "err", err)
			http.Error(w, "cannot decode the picture: "+err.Error(), http.StatusInternalServerError)
		}
		return 0, "decode failed: " + err.Error()
	}
	hd := w.Header()
	hd.Set("Content-Type", "image/jpeg")
	hd.Set("Cache-Control", "no-cache")
	// The ETag names the picture, so a poller that already has it gets
	// 304 Not Modified while the feed is still.
	hd.Set("ETag", `"`+strconv.FormatInt(unit.Received.UnixNano(), 36)+`"`)
	frameHeaders(hd, unit)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(jpeg))
	return len(jpeg), "picture sent"
}

func frameHeaders(hd http.Header, au *h264.AccessUnit) {
	hd.Set("X-Camfeed-Frame-Time", au.Received.UTC().Format(time.RFC3339Nano))
	if !au.Captured.IsZero() {
		hd.Set("X-Camfeed-Frame-Captured", au.Captured.UTC().Format(time.RFC3339Nano))
	}
}

// snapshot returns a JPEG of the newest picture: the cached one if it is
// fresh (made less than CacheFor ago, or the feed has sent nothing since),
// else a new decode.
func (s *Server) snapshot(ctx context.Context, feed string, h *hub.Hub, newest *h264.AccessUnit) ([]byte, *h264.AccessUnit, error) {
	s.mu.Lock()
	e := s.cache[feed]
	if e == nil {
		e = &entry{}
		s.cache[feed] = e
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jpeg != nil && (time.Since(e.made) < s.cfg.CacheFor || e.unit == newest) {
		return e.jpeg, e.unit, nil
	}
	ffmpeg, err := s.ffmpeg()
	if err != nil {
		return nil, nil, err
	}
	key, _ := h.Latest()
	if key == nil {
		return nil, nil, clip.ErrNoVideo
	}
	// From the newest keyframe to the newest unit: pointers, no copies.
	units := h.Since(key.Received)
	if len(units) == 0 {
		return nil, nil, clip.ErrNoVideo
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	// The decode is shared by whoever waits on e.mu, so one client that
	// hangs up does not cancel it; decodeTimeout bounds it.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), decodeTimeout)
	defer cancel()
	begin := time.Now()
	jpeg, err := s.decode(dctx, ffmpeg, units)
	if err != nil {
		return nil, nil, err
	}
	s.log.Debug("snapshot: decoded", "feed", feed, "units", len(units), "took", time.Since(begin))
	e.jpeg, e.unit, e.made = jpeg, units[len(units)-1], time.Now()
	return e.jpeg, e.unit, nil
}

// serveKeyframe sends the newest keyframe as a one-frame MP4.
func (s *Server) serveKeyframe(w http.ResponseWriter, feed string, key *h264.AccessUnit) int {
	frame := time.Second / 30
	c, err := clip.Plan([]*h264.AccessUnit{key}, key.Received, key.Received.Add(frame), frame)
	if err != nil {
		http.Error(w, "no video yet: the feed has not sent a keyframe", http.StatusServiceUnavailable)
		return 0
	}
	var buf bytes.Buffer
	buf.Grow(key.Size() + 2048)
	if err := c.WriteMP4(&buf, nil); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return 0
	}
	hd := w.Header()
	hd.Set("Content-Type", "video/mp4")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Disposition", `inline; filename="`+feed+"-"+key.Received.UTC().Format("20060102-150405Z")+`-keyframe.mp4"`)
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	frameHeaders(hd, key)
	n, _ := w.Write(buf.Bytes())
	return n
}
