package rtsp

import (
	"errors"
	"io"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/camfeed/camfeed/internal/door"

	"github.com/camfeed/camfeed/internal/source"
)

// srtpOverhead is what SRTP (RTP/SAVP, used by RTSPS) adds to each
// packet: the 80-bit authentication tag of AES_CM_128_HMAC_SHA1_80
// (RFC 3711 section 4.2).
const srtpOverhead = 10

// handler receives gortsplib's server events. It is a separate type so
// that these methods are not part of Server's API.
type handler struct{ s *Server }

func status(code base.StatusCode, msg string) *base.Response {
	return &base.Response{StatusCode: code, StatusMessage: msg}
}

// ok returns a new 200 response: gortsplib adds headers to the one it gets.
func ok() *base.Response { return status(base.StatusOK, "") }

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	ctx.Conn.SetUserData(&connState{})
	h.s.log.Debug("rtsp: connection opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.log.Debug("rtsp: connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s := h.s
	f := s.feed(s.feedName(ctx.Path))
	if f == nil {
		return status(base.StatusNotFound, "Feed Not Found"), nil, nil
	}
	if _, res, err := s.authorize(ctx.Conn, ctx.Request, f.name, ActionRead); res != nil {
		return res, nil, err
	}
	st := f.readStream()
	if st == nil {
		return status(base.StatusServiceUnavailable, "Feed Has No Video Yet"), nil, nil
	}
	return ok(), st, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s := h.s
	proto := ctx.Transport.Protocol
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		if !s.cfg.offers(transportName(proto)) {
			return status(base.StatusUnsupportedTransport, ""), nil, nil
		}
		return ok(), nil, nil // a publisher; ANNOUNCE has checked it
	}
	f := s.feed(s.feedName(ctx.Path))
	if f == nil {
		return status(base.StatusNotFound, "Feed Not Found"), nil, nil
	}
	user, res, err := s.authorize(ctx.Conn, ctx.Request, f.name, ActionRead)
	if res != nil {
		return res, nil, err
	}
	if !s.cfg.offers(transportName(proto)) || (proto == gortsplib.ProtocolUDPMulticast && s.tls) {
		return status(base.StatusUnsupportedTransport, ""), nil, nil
	}
	if st := ctx.Session.Stream(); st != nil {
		return ok(), st, nil // gortsplib needs the same stream for every SETUP of a session
	}
	st := f.readStream()
	if st != nil && proto == gortsplib.ProtocolUDPMulticast {
		st = f.multicastStream()
	}
	if st == nil {
		return status(base.StatusServiceUnavailable, "Feed Has No Video Yet"), nil, nil
	}
	remote := ctx.Conn.NetConn().RemoteAddr().String()
	// The session takes its place in the door now and keeps it until it
	// closes, playing or paused.
	ds, err := s.door.Admit(door.Who{Feed: f.name, Protocol: door.RTSP, Remote: remote, User: user})
	if err != nil {
		// 453 is RTSP's "the server cannot take another stream now".
		return status(base.StatusNotEnoughBandwidth, "Not Enough Bandwidth: "+err.Error()), nil, nil
	}
	s.mu.Lock()
	if old := s.sessions[ctx.Session]; old != nil && old.door != nil {
		old.door.Leave("set up again") // not reached: a session's stream is set by its first SETUP
	}
	s.sessions[ctx.Session] = &session{
		ss: ctx.Session, feed: f, user: user, action: ActionRead, door: ds,
		remote: remote, transport: transportName(proto),
	}
	s.mu.Unlock()
	return ok(), st, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[ctx.Session]
	if se == nil || se.action != ActionRead {
		return status(base.StatusMethodNotValidInThisState, ""), nil
	}
	if se.viewer != nil || se.mcast {
		return ok(), nil // PLAY while playing
	}
	se.since = time.Now()
	tr := ctx.Session.Transport()
	switch tr.Protocol {
	case gortsplib.ProtocolUDPMulticast:
		se.feed.joinMulticast()
		se.mcast = true
	default:
		var conn *trackedConn
		if tr.Protocol == gortsplib.ProtocolTCP {
			conn, _ = ctx.Conn.NetConn().(*trackedConn)
		}
		overhead := 0
		if tr.Profile == headers.TransportProfileSAVP {
			overhead = srtpOverhead
		}
		se.viewer = s.startViewer(se.feed, se.door, ctx.Session, ctx.Session.Medias()[0], conn, overhead, se.remote)
	}
	s.log.Debug("rtsp: viewer playing", "feed", se.feed.name, "remote", se.remote, "transport", se.transport, "user", se.user)
	return ok(), nil
}

func (h *handler) OnPause(ctx *gortsplib.ServerHandlerOnPauseCtx) (*base.Response, error) {
	h.s.stopPlaying(ctx.Session)
	return ok(), nil
}

// stopPlaying stops what a session sends; PLAY starts it again, at a
// keyframe.
func (s *Server) stopPlaying(ss *gortsplib.ServerSession) *session {
	s.mu.Lock()
	se := s.sessions[ss]
	var v *viewer
	var mcast bool
	if se != nil {
		v, se.viewer = se.viewer, nil
		mcast, se.mcast = se.mcast, false
	}
	s.mu.Unlock()
	if v != nil {
		v.stop()
	}
	if mcast {
		se.feed.leaveMulticast()
	}
	return se
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s := h.s
	s.mu.Lock()
	se := s.sessions[ctx.Session]
	var v *viewer
	if se != nil {
		v = se.viewer
	}
	s.mu.Unlock()
	var bytes, skips uint64
	if v != nil {
		bytes, skips = v.bytes.Load(), v.skips()
	}
	s.stopPlaying(ctx.Session)
	s.mu.Lock()
	delete(s.sessions, ctx.Session)
	s.mu.Unlock()
	if se == nil {
		return
	}
	if se.pub != nil {
		se.pub.close()
		s.log.Info("rtsp: publisher left", "feed", se.feed.name, "remote", se.remote,
			"units", se.pub.units(), "reason", closeReason("publisher", ctx.Error))
		return
	}
	if se.door != nil {
		se.door.Leave(closeReason("viewer", ctx.Error))
	}
	if !se.since.IsZero() {
		attrs := []any{"feed", se.feed.name, "remote", se.remote, "transport", se.transport,
			"for", time.Since(se.since).Round(time.Millisecond), "reason", closeReason("viewer", ctx.Error)}
		if v != nil {
			attrs = append(attrs, "bytes", bytes, "skips", skips)
		}
		s.log.Debug("rtsp: viewer left", attrs...)
	}
}

// closeReason puts a session's end in words for the door's viewer-left
// line.
func closeReason(who string, err error) string {
	switch {
	case err == nil:
		return "session closed"
	case errors.Is(err, io.EOF):
		return who + " closed the connection"
	}
	var terr liberrors.ErrServerSessionTornDown
	if errors.As(err, &terr) {
		return who + " sent TEARDOWN"
	}
	return err.Error()
}

func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	s := h.s
	name := s.feedName(ctx.Path)
	if f := s.feed(name); f == nil {
		return status(base.StatusNotFound, "Feed Not Found"), nil
	}
	user, res, err := s.authorize(ctx.Conn, ctx.Request, name, ActionPublish)
	if res != nil {
		return res, err
	}
	var forma *format.H264
	media := ctx.Description.FindFormat(&forma)
	if media == nil {
		s.log.Warn("rtsp: refused publisher without H.264", "feed", name, "remote", ctx.Conn.NetConn().RemoteAddr().String())
		return status(base.StatusUnsupportedMediaType, "Only H.264 Video Can Be Published"), nil
	}
	if s.pubs == nil {
		return status(base.StatusForbidden, "Feed Does Not Take Publishers"), nil
	}
	sink, release, err := s.pubs.Publish(name)
	switch {
	case errors.Is(err, ErrBusy):
		s.log.Warn("rtsp: refused a second publisher", "feed", name, "remote", ctx.Conn.NetConn().RemoteAddr().String())
		return status(base.StatusServiceUnavailable, "Feed Already Has A Publisher"), nil
	case errors.Is(err, ErrNotPublishable):
		return status(base.StatusForbidden, "Feed Does Not Take Publishers"), nil
	case err != nil:
		s.log.Error("rtsp: publish", "feed", name, "err", err)
		return status(base.StatusInternalServerError, ""), nil
	}
	pub, err := newPublisher(sink, release, media, forma)
	if err != nil {
		release()
		return status(base.StatusBadRequest, ""), err
	}
	f := s.feed(name)
	remote := ctx.Conn.NetConn().RemoteAddr().String()
	// The feed has one publisher slot: a session that announces and then
	// sends no video (or stops) must not hold it for the session timeout.
	ss := ctx.Session
	pub.stopWatch = source.WatchPublisher(pub.units, s.cfg.PublishTimeout, func() {
		s.log.Warn("rtsp: publisher dropped: no video", "feed", name, "remote", remote, "timeout", s.cfg.PublishTimeout)
		ss.Close() // OnSessionClose releases the feed
	})
	s.mu.Lock()
	s.sessions[ctx.Session] = &session{
		ss: ctx.Session, feed: f, user: user, action: ActionPublish, pub: pub,
		remote: remote,
	}
	s.mu.Unlock()
	return ok(), nil
}

func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	s := h.s
	s.mu.Lock()
	se := s.sessions[ctx.Session]
	if se == nil || se.pub == nil {
		s.mu.Unlock()
		return status(base.StatusMethodNotValidInThisState, ""), nil
	}
	se.transport = transportName(ctx.Session.Transport().Protocol)
	se.since = time.Now()
	s.mu.Unlock()
	ctx.Session.OnPacketRTP(se.pub.media, se.pub.forma, se.pub.depack.Packet)
	s.log.Info("rtsp: publisher recording", "feed", se.feed.name, "remote", se.remote, "transport", se.transport, "user", se.user)
	return ok(), nil
}

func (h *handler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	s := h.s
	s.mu.Lock()
	se := s.sessions[ctx.Session]
	s.mu.Unlock()
	if se != nil && se.pub != nil {
		se.pub.depack.Lost()
	}
}

func (h *handler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.s.log.Debug("rtsp: decode error", "err", ctx.Error)
}

func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.log.Debug("rtsp: stream write error", "err", ctx.Error)
}
