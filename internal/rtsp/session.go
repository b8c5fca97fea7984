package rtsp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
)

// session is what the server knows of one RTSP session: which feed, who,
// and what it does with it (a viewer, a multicast membership or a
// publisher). Guarded by Server.mu, except where noted.
type session struct {
	ss        *gortsplib.ServerSession
	feed      *feed
	remote    string
	user      string
	action    string // ActionRead or ActionPublish
	transport string
	since     time.Time

	viewer *viewer // unicast, while playing
	mcast  bool    // a multicast member, while playing
	pub    *publisher
}

func (se *session) active() bool { return se.viewer != nil || se.mcast || se.pub != nil }

func (se *session) info(secure bool) SessionInfo {
	in := SessionInfo{
		Remote: se.remote, Transport: se.transport, Secure: secure,
		Action: se.action, User: se.user, Since: se.since,
	}
	switch {
	case se.viewer != nil:
		in.Bytes, in.Skips = se.viewer.bytes.Load(), se.viewer.skips()
	case se.mcast:
		se.feed.mu.Lock()
		if v := se.feed.mcast; v != nil {
			in.Bytes, in.Skips = v.bytes.Load(), v.skips()
		}
		se.feed.mu.Unlock()
	case se.pub != nil:
		in.Bytes = se.pub.bytes()
	}
	return in
}

func transportName(p gortsplib.Protocol) string {
	switch p {
	case gortsplib.ProtocolUDP:
		return TransportUDP
	case gortsplib.ProtocolUDPMulticast:
		return TransportMulticast
	}
	return TransportTCP
}

// limiter logs one kind of event at most once a second, as MediaMTX's
// counterdumper does, so that a flood of bad requests or slow viewers
// cannot flood the log: the first event is logged at once, the ones that
// follow within the second are counted and summed up in one line when the
// second is over, with the details of the newest.
type limiter struct {
	log   *slog.Logger
	level slog.Level
	msg   string

	mu     sync.Mutex
	last   time.Time
	n      int   // events not logged yet
	attrs  []any // of the newest of them
	timer  *time.Timer
	wg     sync.WaitGroup
	closed bool
}

func newLimiter(log *slog.Logger, level slog.Level, msg string) *limiter {
	return &limiter{log: log, level: level, msg: msg}
}

func (l *limiter) note(attrs ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.n++
	l.attrs = attrs
	now := time.Now()
	if l.timer != nil {
		return // a summary is due
	}
	if wait := l.last.Add(time.Second).Sub(now); wait > 0 {
		l.wg.Add(1)
		l.timer = time.AfterFunc(wait, l.flush)
		return
	}
	l.emitLocked(now)
}

func (l *limiter) flush() {
	defer l.wg.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if !l.closed && l.n > 0 {
		l.emitLocked(time.Now())
	}
}

func (l *limiter) emitLocked(now time.Time) {
	l.log.Log(context.Background(), l.level, l.msg, append([]any{"count", l.n}, l.attrs...)...)
	l.n, l.last = 0, now
}

// close drops what is not logged yet and waits for a pending summary.
func (l *limiter) close() {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil && l.timer.Stop() {
		l.timer = nil
		l.wg.Done()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (s *Server) noteSkip(feed, viewer string) {
	s.skipLog.note("feed", feed, "viewer", viewer)
}
