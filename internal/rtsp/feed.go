package rtsp

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camfeed/camfeed/internal/hub"
)

var errFeedClosed = errors.New("rtsp: feed closed")

// payloadType is the dynamic RTP payload type used for H.264.
const payloadType = 96

// feed is what the server keeps for one feed: the gortsplib streams that
// describe it, kept in step with the hub's SPS/PPS, and its multicast
// sender. Viewers do not read from the streams; each writes to its own
// session (see viewer).
type feed struct {
	s    *Server
	name string
	hub  *hub.Hub

	mu      sync.Mutex
	gen     uint64                  // hub.Params.Gen the descriptions carry
	stream  *gortsplib.ServerStream // DESCRIBE and unicast SETUP
	mstream *gortsplib.ServerStream // multicast SETUP, made on demand
	mcast   *viewer                 // sends to the multicast group while anyone watches
	members int                     // multicast sessions playing
	closed  bool

	units unitCache // each access unit packetised once for every viewer
}

// feedName maps a request path to a feed: "/cam" and "/cam/" are "cam",
// and "/" is the default feed.
func (s *Server) feedName(path string) string {
	name := strings.Trim(path, "/")
	if name == "" {
		return s.cfg.DefaultFeed
	}
	return name
}

// feed returns the feed state for name, or nil when Feeds has no such
// feed. When the app has replaced a feed's hub, the old state is closed,
// which ends its sessions so that their clients reconnect to the new one.
func (s *Server) feed(name string) *feed {
	h, ok := s.door.Feed(name)
	if !ok || h == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	f := s.byName[name]
	var old *feed
	if f == nil || f.hub != h {
		old = f
		f = &feed{s: s, name: name, hub: h}
		s.byName[name] = f
	}
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	return f
}

// newDescription describes the feed with its live parameter sets. The
// SDP's sprop-parameter-sets and profile-level-id (RFC 6184 8.1) come from
// the H.264 format's SPS and PPS.
func newDescription(title string, p hub.Params) *description.Session {
	return &description.Session{
		Title: title,
		Medias: []*description.Media{{
			Type: description.MediaTypeVideo,
			Formats: []format.Format{&format.H264{
				PayloadTyp:        payloadType,
				SPS:               p.SPS,
				PPS:               p.PPS,
				PacketizationMode: 1,
			}},
		}},
	}
}

// readStream returns the stream to describe the feed with, waiting up to
// DescribeWait for its first keyframe; nil if none came.
func (f *feed) readStream() *gortsplib.ServerStream {
	wait := time.NewTimer(f.s.cfg.DescribeWait)
	defer wait.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		st, err := f.syncLocked()
		f.mu.Unlock()
		if st != nil || err != nil {
			return st
		}
		select {
		case <-tick.C:
		case <-wait.C:
			return nil
		case <-f.s.done:
			return nil
		}
	}
}

// multicastStream returns the stream for multicast SETUPs. It is separate
// from the unicast one because a gortsplib stream sends what is written to
// it to all its readers, and unicast viewers must each have their own
// cursor.
func (f *feed) multicastStream() *gortsplib.ServerStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.syncLocked(); err != nil || f.stream == nil || f.closed {
		return nil
	}
	if f.mstream == nil {
		st := &gortsplib.ServerStream{Server: f.s.srv, Desc: newDescription(f.name, f.hub.Params())}
		if err := st.Initialize(); err != nil {
			f.s.log.Error("rtsp: multicast stream", "feed", f.name, "err", err)
			return nil
		}
		f.mstream = st
	}
	return f.mstream
}

// syncLocked makes the streams describe the hub's current SPS/PPS, so no
// DESCRIBE is ever answered with a stale description. Sessions already
// playing are not touched: the parameter sets travel in-band in front of
// every keyframe (the parser guarantees it), so decoders switch at the
// next keyframe. It returns nil before the feed's first keyframe.
func (f *feed) syncLocked() (*gortsplib.ServerStream, error) {
	if f.closed {
		return nil, errFeedClosed
	}
	p := f.hub.Params()
	if p.Gen == 0 {
		return nil, nil
	}
	if f.stream == nil {
		st := &gortsplib.ServerStream{Server: f.s.srv, Desc: newDescription(f.name, p)}
		if err := st.Initialize(); err != nil {
			return nil, err
		}
		f.stream, f.gen = st, p.Gen
		return st, nil
	}
	if p.Gen != f.gen {
		for _, st := range []*gortsplib.ServerStream{f.stream, f.mstream} {
			if st == nil {
				continue
			}
			// ServerStream.ReloadDesc documents SPS/PPS as safe to change.
			forma := st.Desc.Medias[0].Formats[0].(*format.H264)
			forma.SafeSetParams(p.SPS, p.PPS) //nolint:staticcheck // takes the format's lock
			st.ReloadDesc()
		}
		f.s.log.Info("rtsp: feed parameters changed; new sessions get the new description, playing ones switch in-band",
			"feed", f.name, "width", p.Info.Width, "height", p.Info.Height)
		f.gen = p.Gen
	}
	return f.stream, nil
}

// joinMulticast adds a playing multicast session, starting the feed's
// multicast sender for the first one.
func (f *feed) joinMulticast() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.mstream == nil {
		return
	}
	f.members++
	if f.mcast == nil {
		f.mcast = f.s.startViewer(f, nil, f.mstream, f.mstream.Desc.Medias[0], nil, 0, "multicast")
	}
}

// leaveMulticast removes a multicast session; the sender stops with the
// last one.
func (f *feed) leaveMulticast() {
	f.mu.Lock()
	var v *viewer
	if f.members > 0 {
		f.members--
		if f.members == 0 {
			v, f.mcast = f.mcast, nil
		}
	}
	f.mu.Unlock()
	if v != nil {
		v.stop()
	}
}

// close ends the feed's streams, and with them its sessions.
func (f *feed) close() { f.closeFrom(nil) }

// closeFrom is close called by viewer from, which is not waited for.
func (f *feed) closeFrom(from *viewer) {
	f.mu.Lock()
	f.closed = true
	st, mst, v := f.stream, f.mstream, f.mcast
	f.stream, f.mstream, f.mcast, f.members = nil, nil, nil, 0
	f.mu.Unlock()
	if v != nil && v != from {
		v.stop()
	}
	if st != nil {
		st.Close()
	}
	if mst != nil {
		mst.Close()
	}
}
