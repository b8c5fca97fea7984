// Package mse streams a feed to browsers as fragmented MP4 over a
// WebSocket, for Media Source Extensions: the fallback where WebRTC is
// blocked. Each access unit is one fragment, so the player can show it as
// soon as it arrives.
//
// Wire format on GET /{feed}/ws: a text message with the stream's
// description (JSON: codec, width, height, fps), a binary message with the
// init segment, then one binary moof+mdat per access unit. When the
// stream's parameter sets change (the camera restarted in another mode)
// the server closes the socket with code 4000 and the player reconnects.
package mse

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
)

// writeTimeout bounds one message write. A browser that reads slower than
// the stream makes the hub skip it ahead to keyframes; one that stops
// reading altogether is dropped after this.
const DefaultWriteTimeout = 10 * time.Second

// MaxMessageBytes caps one message from the browser, however it is
// fragmented. The player sends nothing but control frames; without a cap
// one 256 MiB message took camfeed from 39 MB to 628 MB of memory. A
// larger message closes the socket with 1009 (message too big).
const MaxMessageBytes = 4 << 10

// maxMessagesPerSecond is more than a player ever sends; a socket sending
// faster is closed with 1008 (policy violation).
const maxMessagesPerSecond = 32

// CloseStreamChanged is the WebSocket close code sent when the stream's
// parameter sets change; the player reconnects to get the new init.
const CloseStreamChanged = 4000

// Server serves /{feed}/ws.
type Server struct {
	// WriteTimeout is how long one message write may block (0:
	// DefaultWriteTimeout). Set before Register.
	WriteTimeout time.Duration

	door *door.Door
	log  *slog.Logger

	mu      sync.RWMutex
	origins []string
	up      websocket.Upgrader

	fmu   sync.Mutex
	frags map[*hub.Hub]*fragmenter // per feed, while it has viewers
}

// fragmenter returns h's shared fragmenter; release it when done.
func (s *Server) fragmenter(h *hub.Hub, fps float64) *fragmenter {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.frags == nil {
		s.frags = map[*hub.Hub]*fragmenter{}
	}
	fr := s.frags[h]
	if fr == nil {
		fr = newFragmenter(fps)
		s.frags[h] = fr
	}
	fr.refs++
	return fr
}

func (s *Server) release(h *hub.Hub, fr *fragmenter) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if fr.refs--; fr.refs == 0 && s.frags[h] == fr {
		delete(s.frags, h)
	}
}

// New returns a server whose viewers enter through d.
func New(d *door.Door, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{door: d, log: log}
	s.up = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 64 << 10,
		CheckOrigin:     s.checkOrigin,
	}
	return s
}

// AllowOrigins sets which other origins may open the stream (the
// viewer's CORS list; "*" allows any). By default only pages served by
// camfeed itself may, so a web page a LAN user happens to visit cannot
// read the camera.
func (s *Server) AllowOrigins(origins []string) {
	s.mu.Lock()
	s.origins = append([]string(nil), origins...)
	s.mu.Unlock()
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// Register adds GET /{feed}/ws to mux.
func (s *Server) Register(mux *route.Mux) {
	mux.HandleFunc("GET /{feed}/ws", route.Read, s.serveWS)
}

// streamInfo is the first message on the socket.
type streamInfo struct {
	Codec  string  `json:"codec"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	FPS    float64 `json:"fps,omitempty"`
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("feed")
	if _, ok := s.door.Feed(name); !ok {
		http.Error(w, "camfeed: no such feed", http.StatusNotFound)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) || !s.checkOrigin(r) {
		_, _ = s.up.Upgrade(w, r, nil) // answers 400 or 403 in words
		return
	}
	// The slot is taken before the upgrade, so a full feed gets a 503 the
	// browser can show, not a socket that closes at once.
	se, err := s.door.Enter(door.WhoHTTP(r, name, door.MSE))
	if err != nil {
		door.Refuse(w, err)
		return
	}
	conn, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		se.Leave("websocket upgrade failed")
		return // Upgrade has answered
	}
	defer conn.Close()
	conn.SetReadLimit(MaxMessageBytes)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		readControl(conn)
	}()
	defer func() { conn.Close(); <-readDone }()
	err = s.stream(ctx, conn, se.Hub(), se.Sub)
	se.Leave(leaveReason(err))
}

// readControl reads until the socket fails or closes. Reading is only for
// control frames and to notice the close; the read limit ends a message
// that is too big, and a socket sending many messages is closed.
func readControl(conn *websocket.Conn) {
	var n int
	window := time.Now()
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
		if time.Since(window) > time.Second {
			n, window = 0, time.Now()
		}
		if n++; n > maxMessagesPerSecond {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too many messages"), time.Now().Add(time.Second))
			return
		}
	}
}

// leaveReason puts the end of a stream in words for the door's left line.
// A viewer going away (a closed tab: the socket closed, reset, or a close
// frame) is the normal end, not an error's text.
func leaveReason(err error) string {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, websocket.ErrCloseSent), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET), websocket.IsCloseError(err, websocket.CloseGoingAway, websocket.CloseNormalClosure):
		return "viewer closed the connection"
	case errors.Is(err, hub.ErrClosed):
		return "feed closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "viewer stopped reading (write timed out)"
	}
	return err.Error()
}

func (s *Server) stream(ctx context.Context, conn *websocket.Conn, h *hub.Hub, sub *hub.Sub) error {
	var (
		fr  *fragmenter
		tl  timeline
		gen uint64
	)
	timeout := s.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	defer func() {
		if fr != nil {
			s.release(h, fr)
		}
	}()
	write := func(kind int, b []byte) error {
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		return conn.WriteMessage(kind, b)
	}
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, hub.ErrClosed) {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "feed closed"), time.Now().Add(time.Second))
			}
			return err
		}
		if fr == nil || f.Keyframe {
			p := h.Params()
			if fr != nil && p.Gen != gen {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseStreamChanged, "stream changed"), time.Now().Add(time.Second))
				return errors.New("stream changed")
			}
			if fr == nil {
				if !f.Keyframe || p.Gen == 0 {
					continue
				}
				info, _ := json.Marshal(streamInfo{Codec: codecString(p), Width: p.Info.Width, Height: p.Info.Height, FPS: p.Info.FPS})
				if err := write(websocket.TextMessage, info); err != nil {
					return err
				}
				init, err := initSegment(p)
				if err != nil {
					return err
				}
				if err := write(websocket.BinaryMessage, init); err != nil {
					return err
				}
				fr, gen = s.fragmenter(h, p.Info.FPS), p.Gen
			}
		}
		x, err := fr.get(f)
		if err != nil {
			return err
		}
		// One message: this viewer's moof, then the shared mdat.
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		w, err := conn.NextWriter(websocket.BinaryMessage)
		if err != nil {
			return err
		}
		_, _ = w.Write(tl.header(x))
		_, _ = w.Write(x.mdat())
		if err := w.Close(); err != nil {
			return err
		}
	}
}
