// Package hls serves feeds as Low-Latency HLS (fMP4 parts) with
// gohlslib's muxer, for Safari and iOS, and for a CDN in front.
//
// A feed's muxer starts with the first request for its playlist and stops
// after IdleTimeout without requests, so feeds nobody watches over HLS
// cost nothing. Memory per watched feed is bounded by SegmentCount
// segments of about SegmentDuration each (each also capped at
// SegmentMaxSize).
//
// Routes: GET /{feed}/index.m3u8 is the multivariant playlist; everything
// it leads to (media playlist, init, segments, parts) is under
// /{feed}/hls/, so the package registers no /{feed}/{file} wildcard that
// could collide with another output's routes.
package hls

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/mediatime"
	"github.com/camfeed/camfeed/internal/route"
)

// Config configures the HLS output. Zero fields take the defaults.
type Config struct {
	// SegmentCount is how many segments a playlist lists (default 7).
	SegmentCount int
	// SegmentDuration is the minimum segment length; segments end at a
	// keyframe after it (default 1 s).
	SegmentDuration time.Duration
	// PartDuration is the minimum part length (default 200 ms).
	PartDuration time.Duration
	// SegmentMaxSize caps one segment's bytes (default 16 MiB).
	SegmentMaxSize uint64
	// IdleTimeout stops a feed's muxer after this long without a request
	// (default 60 s).
	IdleTimeout time.Duration
	// AllowedOrigins may fetch playlists and media from other pages
	// (CORS); "*" for any.
	AllowedOrigins []string
	// WriteTimeout bounds each write of a playlist or segment to a client
	// (limits.write_timeout; 0: none).
	WriteTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.SegmentCount <= 0 {
		c.SegmentCount = 7
	}
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = time.Second
	}
	if c.PartDuration <= 0 {
		c.PartDuration = 200 * time.Millisecond
	}
	if c.SegmentMaxSize == 0 {
		c.SegmentMaxSize = 16 << 20
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
}

// Server serves the HLS routes for all feeds.
type Server struct {
	cfg      Config
	door     *door.Door
	sessions *sessions
	log      *slog.Logger

	mu      sync.Mutex
	muxers  map[string]*feedMuxer
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New returns a server whose viewers enter through d; Start begins its
// idle sweeper.
func New(cfg Config, d *door.Door, log *slog.Logger) *Server {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, door: d, sessions: newSessions(d), log: log, muxers: map[string]*feedMuxer{}, ctx: ctx, cancel: cancel}
}

// Start starts the sweeper that stops idle muxers.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return nil
	}
	s.started = true
	s.wg.Add(1)
	go s.sweep()
	return nil
}

// Close stops every muxer. Safe after a failed Start and more than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	ms := s.muxers
	s.muxers = map[string]*feedMuxer{}
	s.mu.Unlock()
	s.cancel()
	for _, m := range ms {
		m.close()
	}
	s.wg.Wait()
	s.sessions.expire(0, "server stopped")
}

func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(min(s.cfg.IdleTimeout/4, sessionIdle/4))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.sessions.expire(sessionIdle, "player stopped asking for the playlist")
		var idle []*feedMuxer
		s.mu.Lock()
		for name, m := range s.muxers {
			if m.idleFor() > s.cfg.IdleTimeout || m.dead() {
				idle = append(idle, m)
				delete(s.muxers, name)
			}
		}
		s.mu.Unlock()
		for _, m := range idle {
			s.log.Debug("hls: muxer stopped", "feed", m.name)
			m.close()
		}
	}
}

// Register adds the HLS routes to mux.
func (s *Server) Register(mux *route.Mux) {
	mux.HandleFunc("GET /{feed}/index.m3u8", route.Read, s.serveIndex)
	mux.HandleFunc("GET /{feed}/hls/{file}", route.Read, s.serveFile)
	mux.HandleFunc("OPTIONS /{feed}/index.m3u8", route.Public, s.servePreflight)
	mux.HandleFunc("OPTIONS /{feed}/hls/{file}", route.Public, s.servePreflight)
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			return
		}
	}
}

func (s *Server) servePreflight(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// errNoPicture: the feed has had no keyframe yet.
var errNoPicture = errors.New("hls: the feed has no picture yet")

// muxer returns the feed's running muxer, starting one if needed.
func (s *Server) muxer(name string, h *hub.Hub) (*feedMuxer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("hls: closed")
	}
	if m := s.muxers[name]; m != nil && !m.dead() {
		if m.gen == h.Params().Gen {
			m.touch()
			return m, nil
		}
		m.close() // the camera restarted with other parameters
		delete(s.muxers, name)
	}
	m, err := startMuxer(s.ctx, s.cfg, name, h, s.log)
	if err != nil {
		return nil, err
	}
	s.muxers[name] = m
	return m, nil
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, "index.m3u8", true)
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, r.PathValue("file"), false)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, file string, index bool) {
	w = limits.DeadlineWriter(w, s.cfg.WriteTimeout)
	s.cors(w, r)
	name := r.PathValue("feed")
	h, ok := s.door.Feed(name)
	if !ok {
		http.Error(w, "camfeed: no such feed", http.StatusNotFound)
		return
	}
	// The multivariant playlist opens a session (a viewer in the door);
	// every later request names it (see sessionParam).
	var id string
	var se *session
	var err error
	if index && r.URL.Query().Get(sessionParam) == "" {
		id, err = s.sessions.open(r, name)
	} else {
		id = r.URL.Query().Get(sessionParam)
		se, err = s.sessions.touch(r, name)
	}
	if err != nil {
		door.Refuse(w, err)
		return
	}
	m, err := s.muxer(name, h)
	if err != nil {
		code := http.StatusServiceUnavailable
		http.Error(w, err.Error(), code)
		return
	}
	// gohlslib routes by the last path element.
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + file
	playlist := strings.HasSuffix(file, ".m3u8")
	if !playlist {
		if file == gapFile {
			serveGap(w)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		rec := &recorder{ResponseWriter: cw}
		m.mux.Handle(rec, r2)
		if !rec.wrote {
			http.Error(w, "no such file", http.StatusNotFound)
		}
		if se != nil && cw.n > 0 {
			se.ds.Sent(cw.n)
		}
		return
	}
	// Playlists are rewritten so that every URI they give carries the
	// session; the multivariant playlist also names its media playlist
	// relative to itself, while everything else lives under hls/.
	buf := &bufferWriter{header: http.Header{}}
	m.mux.Handle(buf, r2)
	if buf.code == 0 && buf.body.Len() == 0 {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	prefix := ""
	if index {
		prefix = "hls/"
	}
	body := rewriteURIs(buf.body.Bytes(), prefix, sessionParam+"="+id)
	w.Header().Del("Content-Length")
	if buf.code != 0 {
		w.WriteHeader(buf.code)
	}
	w.Write(body)
}

// gapFile is the URI gohlslib gives the gap segments it lists at the
// start of a low-latency playlist: iOS wants a playlist of SegmentCount
// segments at once, so until that many real ones exist, the first ones
// are EXT-X-GAP entries. RFC 8216bis §4.4.4.7 says a client must not
// load a gap segment, but some do (ffmpeg up to 7.x, which knows no
// EXT-X-GAP), and gohlslib serves nothing there: they got 404, "Failed to
// open segment". So gap.mp4 is served, as a segment with no samples in
// it: an empty body, which adds nothing to the fMP4 stream that a client
// reads after the init segment.
const gapFile = "gap.mp4"

func serveGap(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// rewriteURIs puts prefix in front of, and query (when not empty) at the
// end of, every URI line and URI attribute of a playlist.
func rewriteURIs(pl []byte, prefix, query string) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(pl))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case !strings.HasPrefix(line, "#"):
			line = prefix + withQuery(line, query)
		case strings.Contains(line, `URI="`):
			var b strings.Builder
			rest := line
			for {
				i := strings.Index(rest, `URI="`)
				if i < 0 {
					break
				}
				b.WriteString(rest[:i+5])
				rest = rest[i+5:]
				uri, after, _ := strings.Cut(rest, `"`)
				b.WriteString(prefix + withQuery(uri, query) + `"`)
				rest = after
			}
			b.WriteString(rest)
			line = b.String()
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// withQuery appends query to uri, unless uri has it already (gohlslib
// copies the request's own query into the URIs of a media playlist).
func withQuery(uri, query string) string {
	_, q, _ := strings.Cut(uri, "?")
	switch {
	case query == "":
		return uri
	case slices.Contains(strings.Split(q, "&"), query):
		return uri
	case strings.Contains(uri, "?"):
		return uri + "&" + query
	}
	return uri + "?" + query
}

type recorder struct {
	http.ResponseWriter
	wrote bool
}

func (r *recorder) WriteHeader(code int) { r.wrote = true; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

type bufferWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

// feedMuxer is one feed's gohlslib muxer and the goroutine feeding it.
type feedMuxer struct {
	name  string
	gen   uint64
	mux   *gohlslib.Muxer
	track *gohlslib.Track

	// Written by run's goroutine only.
	frame    time.Duration      // the frame interval, 0 until measured
	waiting  []*h264.AccessUnit // units that wait for it
	clock    *mediatime.Clock
	started  bool
	segStart int64 // media time of the segment being written
	segMin   int64 // SegmentDuration in ticks
	segments int   // segments the muxer has begun

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	lastUsed time.Time
	err      error
}

// estimateOver is how far back the feed's units are looked at to measure
// its frame interval for the media clock (see mediatime.Interval), and
// measureOver the least span they must cover: a feed that has just
// started holds a few units, and an interval measured from those can be
// off by a tenth, which a muxer keeps for its whole life. Until the
// feed's units cover it, the first units wait in the muxer (see write).
const (
	estimateOver = 20 * time.Second
	measureOver  = time.Second
)

// spans is the time units cover, by their receive times.
func spans(units []*h264.AccessUnit) time.Duration {
	if len(units) < 2 {
		return 0
	}
	return units[len(units)-1].Received.Sub(units[0].Received)
}

func startMuxer(parent context.Context, cfg Config, name string, h *hub.Hub, log *slog.Logger) (*feedMuxer, error) {
	p := h.Params()
	if p.Gen == 0 {
		return nil, errNoPicture
	}
	var frame time.Duration // measured from the first units written
	if _, newest := h.Latest(); newest != nil {
		if units := h.Since(newest.Received.Add(-estimateOver)); spans(units) >= measureOver {
			frame = mediatime.Interval(units)
		}
	}
	m, err := newMuxer(cfg, name, p.Gen, p.SPS, p.PPS, frame, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(parent)
	m.cancel = cancel
	go m.run(ctx, h)
	log.Debug("hls: muxer started", "feed", name, "frame_interval", frame)
	return m, nil
}

// newMuxer starts a gohlslib muxer for a feed whose frame interval is
// about frame, or is measured from the first second of units written
// when frame is 0; run or write feed it.
func newMuxer(cfg Config, name string, gen uint64, sps, pps []byte, frame time.Duration, log *slog.Logger) (*feedMuxer, error) {
	track := &gohlslib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}, ClockRate: mediatime.Timescale}
	mux := &gohlslib.Muxer{
		Tracks:             []*gohlslib.Track{track},
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentCount:       cfg.SegmentCount,
		SegmentMinDuration: cfg.SegmentDuration,
		PartMinDuration:    cfg.PartDuration,
		SegmentMaxSize:     cfg.SegmentMaxSize,
		OnEncodeError: func(err error) {
			log.Warn("hls: encode", "feed", name, "err", err)
		},
	}
	if err := mux.Start(); err != nil {
		return nil, fmt.Errorf("hls: start muxer: %w", err)
	}
	return &feedMuxer{
		name: name, gen: gen, mux: mux, track: track,
		frame:  frame,
		segMin: mediatime.Ticks(cfg.SegmentDuration),
		cancel: func() {}, done: make(chan struct{}), lastUsed: time.Now(),
	}, nil
}

// run writes the feed into the muxer. The viewer replays the cached GOP
// (JoinKeyframe) so the first segment is complete as soon as possible;
// the media clock follows the units' own times, so the replay lands where
// it belongs.
func (m *feedMuxer) run(ctx context.Context, h *hub.Hub) {
	defer close(m.done)
	join := hub.JoinKeyframe
	sub := h.Subscribe(hub.SubOptions{Output: "hls", Join: &join, LagBudget: 5 * time.Second})
	defer sub.Close()
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			m.fail(err)
			return
		}
		if err := m.write(f.AccessUnit); err != nil {
			m.fail(err)
			return
		}
	}
}

// write gives au to the muxer, with its time on the media clock.
//
// The clock (mediatime.Segmented) keeps every frame the same length, so
// every part holds the same number of frames and the playlist's
// PART-TARGET never changes ("part duration changed ... this will cause
// an error in iOS clients" when arrival times were used); it takes back
// the time it runs ahead only at a keyframe where gohlslib starts a
// segment, which ends a part whatever its length. Not at the first one:
// gohlslib fixes its part length from the frame durations it saw by then.
func (m *feedMuxer) write(au *h264.AccessUnit) error {
	if !m.started {
		if !au.Keyframe {
			return nil
		}
		m.started = true
	}
	if m.clock == nil {
		if m.frame == 0 {
			// The first segment ends SegmentDuration (1 s by default)
			// after it starts at the earliest: waiting for a second of
			// units (and at least six) to measure the frame interval
			// delays it little or not at all.
			m.waiting = append(m.waiting, au)
			if spans(m.waiting) < measureOver || len(m.waiting) < 6 {
				return nil
			}
			m.frame = mediatime.Interval(m.waiting)
		}
		m.clock = mediatime.NewClock(m.frame, mediatime.Segmented)
		waiting := m.waiting
		m.waiting = nil
		for _, w := range waiting {
			if err := m.put(w); err != nil {
				return err
			}
		}
		if len(waiting) > 0 {
			return nil // au was the last of them
		}
	}
	return m.put(au)
}

// put gives au to the muxer once the clock runs.
func (m *feedMuxer) put(au *h264.AccessUnit) error {
	frame := m.clock.Frame()
	// A segment starts at a keyframe SegmentDuration after the last one
	// started; with half a frame to spare, taking the clock back by up to
	// half a frame keeps it there.
	next := m.clock.Last() + frame
	correct := au.Keyframe && m.segments >= 2 && next-m.segStart >= m.segMin+frame/2
	pts := m.clock.Next(au, correct)
	if au.Keyframe && (m.segments == 0 || pts-m.segStart >= m.segMin) {
		m.segStart = pts
		m.segments++
	}
	if err := m.mux.WriteH264(m.track, au.Received, pts, au.NALUs); err != nil {
		return fmt.Errorf("hls: write: %w", err)
	}
	return nil
}

func (m *feedMuxer) fail(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

func (m *feedMuxer) dead() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err != nil
}

func (m *feedMuxer) touch() {
	m.mu.Lock()
	m.lastUsed = time.Now()
	m.mu.Unlock()
}

func (m *feedMuxer) idleFor() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Since(m.lastUsed)
}

func (m *feedMuxer) close() {
	m.cancel()
	<-m.done
	m.mux.Close()
}
