package rtsp

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
)

// queueLimit is how many RTP bytes a TCP viewer may have handed to
// gortsplib that its socket has not taken yet, before it stops pulling
// from the hub. While it waits, the hub moves on, and the next pull skips
// to a keyframe once the viewer is past the lag budget. It only has to
// keep the socket busy between two pulls.
const queueLimit = 4 << 10

// rtpWriter is where a viewer's packets go: its own *gortsplib.ServerSession
// for unicast, the feed's multicast *gortsplib.ServerStream for multicast.
type rtpWriter interface {
	WritePacketRTPWithNTP(medi *description.Media, pkt *rtp.Packet, ntp time.Time) error
}

// viewer sends one feed to one RTSP session (or to a multicast group)
// from its own hub.Sub, so it skips to keyframes on its own and never
// holds up the camera or another viewer.
type viewer struct {
	s     *Server
	feed  *feed
	w     rtpWriter
	media *description.Media
	conn  *trackedConn // the TCP connection's byte count; nil for UDP
	sub   *hub.Sub
	ds    *door.Session // the session in the door, which counts what is sent
	enc   rtph264.Encoder
	clk   clock

	lag       time.Duration // the lag budget
	overhead  int           // bytes SRTP adds to each packet (RTP/SAVP)
	queued    uint64        // RTP bytes handed to w, interleaved framing included
	needKey   bool          // a packet was refused: resume at a keyframe
	lastSkips uint64
	pending   []mark // access units handed to a TCP connection that have not left yet
	timer     *time.Timer

	bytes     atomic.Uint64
	drops     atomic.Uint64 // times packets were refused and the viewer resumed at a keyframe
	lateSkips atomic.Uint64 // times the socket's backlog passed the lag budget
	label     string

	cancel context.CancelFunc
	done   chan struct{}
}

// startViewer subscribes a viewer to f's hub and starts sending to w.
func (s *Server) startViewer(f *feed, ds *door.Session, w rtpWriter, media *description.Media, conn *trackedConn, overhead int, label string) *viewer {
	v := newViewer(s, f, ds, w, media, conn, label)
	v.overhead = overhead
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go v.run(ctx)
	return v
}

func newViewer(s *Server, f *feed, ds *door.Session, w rtpWriter, media *description.Media, conn *trackedConn, label string) *viewer {
	v := &viewer{
		s: s, feed: f, w: w, media: media, conn: conn, label: label, ds: ds,
		sub:  subscribe(f, ds),
		enc:  rtph264.Encoder{PayloadType: payloadType, PacketizationMode: 1},
		clk:  clock{initial: rand.Uint32()},
		done: make(chan struct{}),
	}
	v.lag = f.hub.Config().LagBudget
	if err := v.enc.Init(); err != nil {
		panic(err) // only fails for packetization mode 0, which is not used
	}
	return v
}

// subscribe gives a viewer its cursor: from the door for a session; the
// feed's multicast sender, which serves every multicast member at once, is
// the feed's own reader and follows the feed's policy.
func subscribe(f *feed, ds *door.Session) *hub.Sub {
	if ds != nil {
		return ds.Subscribe()
	}
	return f.hub.Subscribe(hub.SubOptions{Output: "rtsp"})
}

// stop ends the viewer and waits for it.
func (v *viewer) stop() {
	v.cancel()
	<-v.done
}

func (v *viewer) run(ctx context.Context) {
	defer close(v.done)
	defer v.sub.Close()
	for {
		if err := v.drain(ctx); err != nil {
			return
		}
		f, err := v.sub.Next(ctx)
		if err != nil {
			if errors.Is(err, hub.ErrClosed) {
				v.s.log.Info("rtsp: feed closed, ending viewer", "feed", v.feed.name, "viewer", v.label)
				v.feed.closeFrom(v) // its sessions end, and their clients reconnect
			}
			return
		}
		if sk := v.sub.Stats().Skips; sk != v.lastSkips {
			v.ds.Skipped(sk - v.lastSkips)
			v.lastSkips = sk
			v.s.noteSkip(v.feed.name, v.label)
		}
		now := time.Now()
		if !f.Keyframe && !v.needKey && v.late(now) {
			// What this viewer was given is older than the lag budget and
			// still waits in camfeed's or the kernel's queue: the client's
			// link is the bottleneck. Skip to the next keyframe, as the hub
			// does for a viewer that does not pull.
			v.needKey = true
			v.lateSkips.Add(1)
			v.ds.Skipped(1)
			v.s.noteSkip(v.feed.name, v.label)
		}
		v.send(f, now)
	}
}

// late reports whether the viewer's backlog (see backlogAge) is older
// than the lag budget. It asks the kernel only when the answer could be
// yes, or to trim the list of pending units, not for every unit.
func (v *viewer) late(now time.Time) bool {
	if v.conn == nil || len(v.pending) == 0 {
		return false
	}
	if now.Sub(v.pending[0].received) <= v.lag && len(v.pending) < 64 {
		return false // the oldest unit pending is within budget anyway
	}
	return v.backlogAge(now) > v.lag
}

// backlogAge is the age of the oldest access unit that was handed to a
// TCP connection and has not left for the client yet, in gortsplib's
// queue or the kernel's; 0 when all has left (or for UDP, where
// everything leaves at once).
func (v *viewer) backlogAge(now time.Time) time.Duration {
	if v.conn == nil || len(v.pending) == 0 {
		return 0
	}
	d := v.conn.delivered()
	i := 0
	for i < len(v.pending) && v.pending[i].end <= d {
		i++
	}
	v.pending = append(v.pending[:0], v.pending[i:]...)
	if len(v.pending) == 0 {
		return 0
	}
	return now.Sub(v.pending[0].received)
}

// drain waits while more than queueLimit bytes are queued for a TCP
// socket that has not taken them: a stalled reader blocks here, not in the
// hub, so nobody else waits for it.
func (v *viewer) drain(ctx context.Context) error {
	c := v.conn
	if c == nil {
		return nil
	}
	for c.rtpBytes.Load()+queueLimit < v.queued {
		c.waiting.Store(true)
		if c.rtpBytes.Load()+queueLimit >= v.queued {
			c.waiting.Store(false)
			break
		}
		if v.timer == nil {
			v.timer = time.NewTimer(time.Second)
		} else {
			v.timer.Reset(time.Second)
		}
		select {
		case <-c.wake:
		case <-v.timer.C: // look again; a wake-up may race with the store above
		case <-ctx.Done():
			c.waiting.Store(false)
			return ctx.Err()
		}
		c.waiting.Store(false)
	}
	return nil
}

// send packetises one access unit (RFC 6184, non-interleaved mode) and
// hands it to the session. now is the send time, for catch-up units.
func (v *viewer) send(f hub.Frame, now time.Time) {
	if f.Skipped && !f.Catchup && now.Sub(f.Received) > v.lag {
		// The hub resumes a viewer that fell behind at the newest
		// keyframe, which can be up to a GOP old. A viewer that fell
		// behind is short of bandwidth: spending it on a picture already
		// past the lag budget only delays the next one. Wait for a fresh
		// keyframe instead.
		v.needKey = true
		return
	}
	if v.needKey {
		if !f.Keyframe {
			return
		}
		v.needKey = false
	}
	ts, ntp := v.clk.stamp(f.Received, now, f.Catchup)
	pkts, err := v.enc.Encode(f.NALUs)
	if err != nil {
		return
	}
	var n uint64
	for _, pkt := range pkts {
		pkt.Timestamp = ts
		if err := v.w.WritePacketRTPWithNTP(v.media, pkt, ntp); err != nil {
			// gortsplib's queue refused it (should not happen, see drain):
			// the picture is broken, so resume at the next keyframe.
			v.needKey = true
			v.drops.Add(1)
			v.ds.Skipped(1)
			v.s.noteSkip(v.feed.name, v.label)
			break
		}
		n += uint64(4 + pkt.MarshalSize() + v.overhead)
	}
	v.queued += n
	v.bytes.Add(n)
	v.ds.Sent(int(n))
	if v.conn != nil {
		// A catch-up unit counts as fresh when sent, as on the session's
		// clock: a replayed GOP is judged by how long it waits here, not
		// by how old it was when the viewer joined.
		ref := f.Received
		if f.Catchup {
			ref = now
		}
		v.pending = append(v.pending, mark{v.queued, ref})
		if v.conn.onSent != nil {
			v.conn.addMark(v.queued, f.Received)
		}
	}
}

// skips is the number of times the viewer jumped ahead to a keyframe.
func (v *viewer) skips() uint64 { return v.sub.Stats().Skips + v.drops.Load() + v.lateSkips.Load() }
