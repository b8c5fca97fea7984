package rtsp

import (
	"time"

	"github.com/camfeed/camfeed/internal/door"

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

	door   *door.Session // a reader's place in the door, from SETUP to close
	viewer *viewer       // unicast, while playing
	mcast  bool          // a multicast member, while playing
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

func (s *Server) noteSkip(feed, viewer string) {
	s.skipLog.note("feed", feed, "viewer", viewer)
}
