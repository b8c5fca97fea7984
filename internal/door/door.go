// Package door is the one way in for every viewer of every protocol.
//
// An output (raw HTTP, TCP, unix socket, FIFO, RTSP, WebRTC, MSE, LL-HLS,
// clips, snapshots, pushes) says who wants to watch (Who: feed, protocol,
// remote address, user) and gets a *Session or a refusal. The door owns:
//
//   - admission: the limits per feed, per address and overall, taken when
//     the session opens and held until Leave, whatever the protocol;
//   - policy: the session's hub.Sub follows the feed's join policy and lag
//     budget (from the config, held by the hub) and skips only to a
//     keyframe; outputs never pick their own;
//   - accounting: the same fields for every protocol (bytes, units, skips,
//     duration, reason) in the status, the metrics and the joined/left log
//     lines, which are rate-limited.
//
// Outputs only encode and send. Authentication happens before the door
// (HTTP routes declare an access class, RTSP asks auth itself); the door
// gets the user's name for accounting.
package door

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/logx"
)

// Protocols, as sessions are labelled in the status, metrics and logs.
const (
	HTTP     = "http"     // raw H.264 over HTTP
	TCP      = "tcp"      // raw H.264 over a TCP listener
	Unix     = "unix"     // raw H.264 over a unix socket
	FIFO     = "fifo"     // raw H.264 into a named pipe
	RTSP     = "rtsp"     // RTSP PLAY, any transport
	WebRTC   = "webrtc"   // WHEP
	MSE      = "mse"      // fMP4 over a WebSocket
	HLS      = "hls"      // LL-HLS, one session per playlist session id
	Clip     = "clip"     // an MP4 download from RAM
	Snapshot = "snapshot" // a JPEG
	Push     = "push"     // camfeed sending the feed to another server
)

// Errors Enter and Admit return, besides *limits.FullError (errors.Is
// limits.ErrFull) when a limit is reached.
var (
	ErrNoFeed = errors.New("door: no such feed")
	ErrClosed = errors.New("door: shutting down")
)

// Who describes a viewer asking to come in.
type Who struct {
	Feed     string
	Protocol string
	// Remote is the peer's "ip:port" (or a path for local sockets). Its
	// address counts toward the per-address limit.
	Remote string
	// User is the authenticated user, "" when anonymous.
	User string
	// Ahead is how far past the live edge a bounded read (a clip with
	// after=) goes: such a viewer is never skipped within it.
	Ahead time.Duration
}

// Feeds finds a feed's hub.
type Feeds interface {
	Hub(name string) (*hub.Hub, bool)
}

// Metrics is what the door reports to; metrics.Metrics implements it.
type Metrics interface {
	ViewerRejected(limit string)
}

// Door admits viewers. It is safe for concurrent use.
type Door struct {
	feeds Feeds
	slots *limits.Viewers
	met   Metrics
	lines *logx.RateLog

	left chan struct{} // a session left: Wait looks again

	mu     sync.Mutex
	open   map[*Session]struct{}
	closed bool
	nextID uint64
	done   map[key]*Totals // per feed and protocol, sessions that have left
}

type key struct{ feed, protocol string }

// New returns a door in front of feeds, with the admission limits in
// slots. met may be nil.
func New(feeds Feeds, slots *limits.Viewers, met Metrics, log *slog.Logger) *Door {
	return &Door{
		feeds: feeds, slots: slots, met: met, lines: logx.NewRateLog(log, linesPer, linesEvery),
		open: map[*Session]struct{}{}, done: map[key]*Totals{}, left: make(chan struct{}, 1),
	}
}

// SetFeeds swaps the feeds the door admits to (a reload).
func (d *Door) SetFeeds(f Feeds) {
	d.mu.Lock()
	d.feeds = f
	d.mu.Unlock()
}

// Enter admits a viewer and subscribes it to the feed's hub with the
// feed's policy. The caller reads s.Sub and must call Leave.
func (d *Door) Enter(who Who) (*Session, error) {
	s, err := d.admit(who, true)
	if err != nil {
		return nil, err
	}
	d.joined(s)
	return s, nil
}

// subOptions is the policy: every live viewer follows its feed's join
// policy and lag budget, which the hub holds from the config, and skips
// only to a keyframe. The one exception is a bounded read of the future
// (a clip with after=): it must not be skipped inside it, and it starts
// with the cached GOP so that the clip is decodable.
func subOptions(who Who, h *hub.Hub) hub.SubOptions {
	opts := hub.SubOptions{Output: who.Protocol}
	if who.Ahead > 0 {
		// Such a reader only collects pointers, so it never lags in
		// practice; a minute past the wait means it is never skipped.
		join := hub.JoinKeyframe
		opts.Join, opts.LagBudget = &join, who.Ahead+time.Minute
	}
	return opts
}

// Subscribe returns a new cursor with the feed's policy for an Admit
// session whose output starts and stops sending within one session (RTSP
// PLAY after PAUSE starts again at a keyframe). The output closes it and
// counts what it sends with Sent and Skipped.
func (s *Session) Subscribe() *hub.Sub { return s.hub.Subscribe(subOptions(s.Who, s.hub)) }

// Admit admits a viewer that an output serves from a fan-out it shares
// among its viewers (WebRTC's per-feed packetiser, LL-HLS's per-feed
// muxer): the session holds a slot and is accounted, but has no Sub; the
// output reports what it sends with Sent and Skipped.
func (d *Door) Admit(who Who) (*Session, error) {
	s, err := d.admit(who, false)
	if err != nil {
		return nil, err
	}
	d.joined(s)
	return s, nil
}

// admit takes a place for who; with sub, the session's Sub is set before
// the session is listed (Sessions reads it from other goroutines).
func (d *Door) admit(who Who, sub bool) (*Session, error) {
	d.mu.Lock()
	feeds, closed := d.feeds, d.closed
	d.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	h, ok := feeds.Hub(who.Feed)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoFeed, who.Feed)
	}
	release, err := d.slots.Acquire(who.Feed, limits.RemoteIP(who.Remote))
	if err != nil {
		var fe *limits.FullError
		if errors.As(err, &fe) && d.met != nil {
			d.met.ViewerRejected(fe.Limit)
		}
		d.Log(context.Background(), slog.LevelWarn, "viewer refused", "feed", who.Feed, "protocol", who.Protocol, "remote", who.Remote, "user", who.User, "reason", err.Error())
		return nil, err
	}
	s := &Session{Who: who, Since: time.Now(), d: d, release: release, hub: h}
	if sub {
		s.Sub = h.Subscribe(subOptions(who, h))
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		if s.Sub != nil {
			s.Sub.Close()
		}
		release()
		return nil, ErrClosed
	}
	d.nextID++
	s.ID = d.nextID
	d.open[s] = struct{}{}
	d.mu.Unlock()
	return s, nil
}

func (d *Door) joined(s *Session) {
	d.Log(context.Background(), slog.LevelInfo, "viewer joined", "feed", s.Feed, "protocol", s.Protocol, "remote", s.Remote, "user", s.User, "id", s.ID)
}

// How many per-viewer lines (joined, left, refused) the door writes: a
// client can make camfeed write them at will (15,000 connect/disconnect
// cycles wrote 15,000 lines, 2.8 MB, to a Pi's journal). Past linesPer in
// linesEvery they are counted, and one line per message says how many.
const (
	linesPer   = 20
	linesEvery = 10 * time.Second
)

// Log writes a per-viewer line, rate-limited with the door's own
// joined/left lines; outputs use it for lines any client can cause (an
// address refused by an allow-list).
func (d *Door) Log(ctx context.Context, level slog.Level, msg string, attrs ...any) {
	d.lines.Log(ctx, level, msg, attrs...)
}

// Close refuses new viewers from now on (shutdown). Sessions already in
// end as their outputs stop; Flush after they have.
func (d *Door) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
}

// ReasonShutdown is the reason of every session that leaves after Close:
// at shutdown, whatever the output saw (a closed feed, a closed socket,
// a stopped server), the viewer left because camfeed stopped.
const ReasonShutdown = "camfeed stopped"

// Wait waits until every session has left, or ctx ends. Shutdown calls
// it after Close and after closing the hubs, so that every viewer's left
// line is written before the process exits: outputs that took their
// connection over from net/http (raw HTTP, MSE's WebSocket) are not
// waited for by http.Server.Shutdown.
func (d *Door) Wait(ctx context.Context) error {
	for {
		d.mu.Lock()
		n := len(d.open)
		d.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-d.left:
		case <-ctx.Done():
			return fmt.Errorf("%d viewer(s) still connected: %w", n, ctx.Err())
		}
	}
}

// Flush writes the count of per-viewer lines held back, so that none is
// lost at shutdown.
func (d *Door) Flush() { d.lines.Flush() }

// Session is one viewer inside the door.
type Session struct {
	Who
	ID    uint64
	Since time.Time
	// Sub is the viewer's cursor (Enter); nil for Admit.
	Sub *hub.Sub

	d       *Door
	hub     *hub.Hub
	release func()
	units   atomic.Uint64 // Admit sessions: counted by Sent
	bytes   atomic.Uint64
	skips   atomic.Uint64
	left    atomic.Bool
}

// Hub is the session's feed.
func (s *Session) Hub() *hub.Hub { return s.hub }

// Sent counts an access unit of n bytes sent to an Admit session. Like
// Skipped, it does nothing on a nil Session, so a fan-out shared with no
// one viewer (RTSP multicast) can use the same code.
func (s *Session) Sent(n int) {
	if s == nil {
		return
	}
	s.units.Add(1)
	s.bytes.Add(uint64(n))
}

// Skipped counts n skips to a keyframe by an Admit session's output.
func (s *Session) Skipped(n uint64) {
	if s != nil {
		s.skips.Add(n)
	}
}

// Stats are a session's counters.
type Stats struct {
	Units, Bytes, Skips uint64
}

// Stats returns the session's counters so far.
func (s *Session) Stats() Stats {
	st := Stats{Units: s.units.Load(), Bytes: s.bytes.Load(), Skips: s.skips.Load()}
	if s.Sub != nil {
		ss := s.Sub.Stats()
		st.Units += ss.Units
		st.Bytes += ss.Bytes
		st.Skips += ss.Skips
	}
	return st
}

// Leave ends the session: its slot is released, its Sub closed, and it is
// accounted with reason (in words: "viewer closed the connection", "too
// slow: write timed out", ...). Safe to call more than once; only the
// first counts.
func (s *Session) Leave(reason string) {
	if s.left.Swap(true) {
		return
	}
	st := s.Stats()
	d := s.d
	d.mu.Lock()
	if d.closed {
		reason = ReasonShutdown
	}
	d.mu.Unlock()
	// The line first: once a viewer no longer counts anywhere, its line
	// has been written (or counted for the summary).
	d.Log(context.Background(), slog.LevelInfo, "viewer left", "feed", s.Feed, "protocol", s.Protocol, "remote", s.Remote, "user", s.User, "id", s.ID,
		"watched", time.Since(s.Since).Round(time.Millisecond).String(),
		"bytes", st.Bytes, "units", st.Units, "skips", st.Skips, "reason", reason)
	if s.Sub != nil {
		s.Sub.Close()
	}
	s.release()
	d.mu.Lock()
	delete(d.open, s)
	k := key{s.Feed, s.Protocol}
	t := d.done[k]
	if t == nil {
		t = &Totals{}
		d.done[k] = t
	}
	t.Sessions++
	t.Units += st.Units
	t.Bytes += st.Bytes
	t.Skips += st.Skips
	d.mu.Unlock()
	select {
	case d.left <- struct{}{}:
	default: // Wait is already woken
	}
}

// Info describes an open session, for the status API.
type Info struct {
	ID       uint64    `json:"id"`
	Protocol string    `json:"protocol"`
	Remote   string    `json:"remote"`
	User     string    `json:"user,omitempty"`
	Since    time.Time `json:"since"`
	Bytes    uint64    `json:"bytes"`
	Units    uint64    `json:"units"`
	Skips    uint64    `json:"skips"`
}

// Sessions returns the open sessions of feed, oldest first.
func (d *Door) Sessions(feed string) []Info {
	d.mu.Lock()
	var ss []*Session
	for s := range d.open {
		if s.Feed == feed {
			ss = append(ss, s)
		}
	}
	d.mu.Unlock()
	out := make([]Info, 0, len(ss))
	for _, s := range ss {
		st := s.Stats()
		out = append(out, Info{ID: s.ID, Protocol: s.Protocol, Remote: s.Remote, User: s.User, Since: s.Since,
			Bytes: st.Bytes, Units: st.Units, Skips: st.Skips})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Count returns the open sessions of feed by protocol.
func (d *Door) Count(feed string) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]int{}
	for s := range d.open {
		if s.Feed == feed {
			m[s.Protocol]++
		}
	}
	return m
}

// Totals add up sessions of one feed and protocol.
type Totals struct {
	Open                          int
	Sessions, Units, Bytes, Skips uint64
}

// Totals returns, per protocol, the open sessions and the counters of
// every session of feed so far (open ones included), for the metrics.
func (d *Door) Totals(feed string) map[string]Totals {
	d.mu.Lock()
	var ss []*Session
	out := map[string]Totals{}
	for k, t := range d.done {
		if k.feed == feed {
			out[k.protocol] = *t
		}
	}
	for s := range d.open {
		if s.Feed == feed {
			ss = append(ss, s)
		}
	}
	d.mu.Unlock()
	for _, s := range ss {
		st := s.Stats()
		t := out[s.Protocol]
		t.Open++
		t.Sessions++
		t.Units += st.Units
		t.Bytes += st.Bytes
		t.Skips += st.Skips
		out[s.Protocol] = t
	}
	return out
}

// RemoteAddr returns the address part of a Who.Remote, for outputs that
// key their own state by it.
func RemoteAddr(remote string) netip.Addr { return limits.RemoteIP(remote) }

// Refuse answers an HTTP viewer that Enter or Admit turned away: 404 for
// a feed that does not exist, 503 with Retry-After and the reason in
// words for a limit or a shutdown.
func Refuse(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNoFeed):
		http.Error(w, "camfeed: no such feed", http.StatusNotFound)
	case errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "camfeed: shutting down", http.StatusServiceUnavailable)
	default:
		limits.Reject(w, err)
	}
}

// WhoHTTP describes the viewer making r, for feed over protocol; the user
// is the one the route's guard authenticated.
func WhoHTTP(r *http.Request, feed, protocol string) Who {
	return Who{Feed: feed, Protocol: protocol, Remote: r.RemoteAddr, User: auth.UserFrom(r.Context())}
}

// Feed reports whether feed exists, with its hub.
func (d *Door) Feed(name string) (*hub.Hub, bool) {
	d.mu.Lock()
	f := d.feeds
	d.mu.Unlock()
	return f.Hub(name)
}

// Unlimited returns a door to feeds with no limits and no logs, for tests
// and tools that run one output on its own.
func Unlimited(feeds Feeds) *Door {
	return New(feeds, limits.NewViewers(limits.Caps{}), nil, slog.New(slog.DiscardHandler))
}
