package rtsp

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/ntp"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
)

// queueLimit is how many RTP bytes a TCP viewer may have handed to
// gortsplib that its socket has not taken yet, before it stops pulling
// from the hub. While it waits, the hub moves on, and the next pull skips
// to a keyframe once the viewer is past the lag budget. It only has to
// keep the socket busy between two pulls.
const queueLimit = 4 << 10

// writeQueueSize is gortsplib's queue per session, in packets; each slot
// costs 16 bytes in every session. A viewer hands it an access unit's
// packets at once only for its first unit (then it writes its own, see
// writeDirect and sendUDP) or over RTSPS, where drain keeps what waits to
// queueLimit; a TCP unit larger than the queue goes in chunks of
// queueChunk packets. So the queue has to hold whole only a UDP viewer's
// first unit and a multicast unit: 1024 packets is 1.4 MB, three times a
// large 1080p keyframe from the Pi's encoder. A larger first keyframe
// fails for UDP (logged) and the viewer waits for a smaller one.
const (
	writeQueueSize = 1024
	queueChunk     = writeQueueSize / 2
)

// directWriteTimeout bounds one access unit's write by a viewer that
// writes its own packets: a client that takes longer has stopped reading.
// It is gortsplib's default WriteTimeout, which bounds each of its writes.
const directWriteTimeout = 10 * time.Second

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
	clk   clock
	seq   uint16     // the next packet's sequence number (random start, RFC 3550 5.1)
	pkt   rtp.Packet // reused for each packet handed to gortsplib

	// A plain TCP viewer writes its packets itself, straight to the
	// connection (see writeDirect): direct is set once its first access
	// unit, sent through gortsplib, has shown the interleaved channel and
	// SSRC that gortsplib told the client in SETUP.
	direct  bool
	channel byte
	ssrc    uint32
	hdrs    []byte           // the headers of a unit sent as buffers (a large one over TCP, UDP)
	iov     net.Buffers      // its headers and the shared payloads, for one writev or sendmmsg
	one     [1][]byte        // or a unit laid out in one buffer
	chunk   *[wireChunk]byte // that buffer, from the server's pool
	nb      net.Buffers      // what writeRTP writes (and consumes)

	// The feed's fan-out serves a direct viewer at the live edge (see
	// push): fanned is set while it does, rest is the size of a unit it
	// could not write whole, pushErr the end of the Sub it met.
	fanned   bool
	rest     int
	restLeft int // what tryWriteRTP left of it
	pushErr  error

	// A unicast UDP viewer likewise sends its own packets, with
	// sendmmsg, once gortsplib has sent its first ones to dest.
	udp    *rtpSocket
	dest   *net.UDPAddr
	keys   []uint64 // the packets gortsplib sent whose destination rtpSocket noted
	msgs   []ipv4.Message
	firsts []int  // each message's first packet (see batch)
	oob    []byte // the UDP_SEGMENT control message, shared by the messages
	mm     mmsgSender

	// Its RTCP sender reports (RFC 3550 6.4.1), which it sends itself
	// (see senderReport): what it has sent, and when the next one is due.
	srPackets, srOctets uint32
	srDue               time.Time

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
	if conn == nil && ds != nil && overhead == 0 && s.udp != nil {
		v.udp = s.udp.rtpSocket() // unicast UDP: see sendUDP
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go v.run(ctx)
	return v
}

func newViewer(s *Server, f *feed, ds *door.Session, w rtpWriter, media *description.Media, conn *trackedConn, label string) *viewer {
	v := &viewer{
		s: s, feed: f, w: w, media: media, conn: conn, label: label, ds: ds,
		sub:  subscribe(f, ds),
		clk:  clock{initial: rand.Uint32()},
		seq:  uint16(rand.Uint32()),
		done: make(chan struct{}),
	}
	v.lag = f.hub.Config().LagBudget
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
	defer v.forgetKeys()
	var fo *hub.Fanout
	defer func() {
		if fo != nil {
			fo.Leave()
		}
	}()
	var p *hub.Pusher
	for {
		if err := v.drain(ctx); err != nil {
			return
		}
		if fo == nil && v.fannable() {
			fo = v.s.fanouts.Join(v.feed.hub)
			p = hub.NewPusher(func() bool { return v.push(ctx) })
		}
		var f hub.Frame
		var err error
		if fo != nil {
			var ok bool
			f, ok, err = v.sub.TryNext()
			if err == nil && !ok {
				// At the live edge: the feed's fan-out serves the viewer
				// from here, until a unit does not go at once (see push).
				v.fanned = true
				back := fo.Wait(ctx, p)
				v.fanned = false
				if !back {
					return
				}
				if v.rest > 0 {
					if ctx.Err() != nil {
						_ = v.conn.Close() // the session ended: do not wait for the client
					}
					v.finishDirect()
				}
				if err, v.pushErr = v.pushErr, nil; err != nil {
					v.ended(err)
					return
				}
				continue
			}
		} else {
			f, err = v.sub.Next(ctx)
		}
		if err != nil {
			v.ended(err)
			return
		}
		v.unit(ctx, f)
	}
}

// ended ends the viewer on an error from its Sub.
func (v *viewer) ended(err error) {
	if errors.Is(err, hub.ErrClosed) {
		v.s.log.Debug("rtsp: feed closed, ending viewer", "feed", v.feed.name, "viewer", v.label)
		v.feed.closeFrom(v) // its sessions end, and their clients reconnect
	}
}

// unit sends access unit f, or skips it.
func (v *viewer) unit(ctx context.Context, f hub.Frame) {
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
	v.send(ctx, f, now)
	if v.srPackets > 0 && !now.Before(v.srDue) {
		v.senderReport(now)
	}
}

// rtcpWriter is where a viewer's RTCP goes: its session, or the feed's
// multicast stream.
type rtcpWriter interface {
	WritePacketRTCP(medi *description.Media, pkt rtcp.Packet) error
}

// senderReport sends the viewer's RTCP sender report for now. gortsplib
// would send one, but it counts only the packets it writes itself, which
// after a viewer's first access unit is none (see goDirect, sendUDP):
// its counts stopped at the first picture. The RTP and NTP times are the
// viewer's clock at now, the linear function of the wall clock that its
// packets are stamped with (see clock), so a player can map timestamps to
// wall time; the counts are the packets and payload octets sent so far.
// The first goes with the first access unit, as gortsplib's does, then
// one every senderReportPeriod.
func (v *viewer) senderReport(now time.Time) {
	v.srDue = now.Add(v.s.cfg.senderReportPeriod)
	w, ok := v.w.(rtcpWriter)
	if !ok || !v.clk.started {
		return
	}
	sr := &rtcp.SenderReport{
		SSRC:        v.pkt.SSRC, // gortsplib set it on the first unit's packets
		NTPTime:     ntp.Encode(now),
		RTPTime:     v.clk.initial + uint32(ticks(now.Sub(v.clk.origin))),
		PacketCount: v.srPackets,
		OctetCount:  v.srOctets,
	}
	if err := w.WritePacketRTCP(v.media, sr); err != nil {
		v.s.log.Debug("rtsp: sender report not sent", "feed", v.feed.name, "viewer", v.label, "err", err)
	}
}

// fannable reports whether the feed's fan-out may serve the viewer: one
// that writes its own packets to a plain TCP connection (see writeDirect;
// RTSPS needs its TLS writes), or sends its own to a unicast UDP client
// (see sendUDP). A UDP send does not wait for its client: it waits only
// while the send buffer of the socket it goes through (the RTP socket's
// twin, or the RTP socket) is full, which the host's network card drains
// at the link's rate, and which holds every UDP viewer alike, whichever
// goroutine sends. (A link that goes down drops what is queued for it;
// nothing waits for it to come back.)
func (v *viewer) fannable() bool {
	if v.conn == nil {
		return v.dest != nil
	}
	return v.direct && !v.conn.tls && v.conn.raw != nil
}

// push serves the viewer from the feed's fan-out (hub.Fanout), up to the
// live edge, with writes that do not block. It returns false to hand the
// viewer back to its goroutine: a unit that did not go whole (v.rest, for
// finishDirect), the end of its Sub (v.pushErr) or a failed write (ctx
// ended).
func (v *viewer) push(ctx context.Context) bool {
	for {
		f, ok, err := v.sub.TryNext()
		if err != nil {
			v.pushErr = err
			return false
		}
		if !ok {
			return true
		}
		v.unit(ctx, f)
		if v.rest > 0 || ctx.Err() != nil {
			return false
		}
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
func (v *viewer) drain(ctx context.Context) error { return v.drainTo(ctx, queueLimit) }

// drainTo waits while more than slack bytes are queued for a TCP socket
// that has not taken them.
func (v *viewer) drainTo(ctx context.Context, slack uint64) error {
	c := v.conn
	if c == nil {
		return nil
	}
	for c.rtpBytes.Load()+slack < v.queued {
		c.waiting.Store(true)
		if c.rtpBytes.Load()+slack >= v.queued {
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
func (v *viewer) send(ctx context.Context, f hub.Frame, now time.Time) {
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
	u := v.feed.units.get(f)
	// A catch-up unit counts as fresh when sent, as on the session's
	// clock: a replayed GOP is judged by how long it waits here, not by
	// how old it was when the viewer joined.
	ref := f.Received
	if f.Catchup {
		ref = now
	}
	if !v.direct && v.conn != nil && v.overhead == 0 && v.queued > 0 {
		v.goDirect()
	}
	if v.direct {
		v.writeDirect(u, ts, ref, f.Received, now)
		return
	}
	if v.udp != nil && v.dest == nil && len(v.keys) > 0 {
		v.dest = v.udp.destination(v.keys[0])
		if v.dest != nil {
			v.forgetKeys()
		}
	}
	if v.dest != nil {
		v.sendUDP(u, ts)
		return
	}
	var n, handed uint64
	last := u.packets() - 1
	for i := range u.packets() {
		if v.conn != nil && i > 0 && i%queueChunk == 0 {
			// A unit larger than gortsplib's queue goes in chunks, each
			// once the connection has taken most of the one before (all
			// but what it holds back to coalesce, which a unit's last
			// packet flushes).
			v.queued += n - handed
			handed = n
			if err := v.drainTo(ctx, queueLimit+coalesceLimit); err != nil {
				break
			}
		}
		v.pkt.Header = rtp.Header{Version: 2, PayloadType: payloadType, SequenceNumber: v.seq, Timestamp: ts, Marker: i == last}
		v.pkt.Payload = u.payload(i)
		v.seq++
		if err := v.w.WritePacketRTPWithNTP(v.media, &v.pkt, ntp); err != nil {
			// gortsplib's queue refused it: a UDP or multicast unit
			// larger than the queue (see writeQueueSize), or the session
			// ended. The picture is broken, so resume at the next keyframe.
			if u.packets() > writeQueueSize {
				v.s.door.Log(context.Background(), slog.LevelWarn, "rtsp: an access unit too large for the first UDP send; the viewer waits for a smaller keyframe (RTSP over TCP has no such limit)",
					"feed", v.feed.name, "viewer", v.label, "bytes", f.Size(), "packets", u.packets())
			}
			v.needKey = true
			v.drops.Add(1)
			v.ds.Skipped(1)
			v.s.noteSkip(v.feed.name, v.label)
			break
		}
		n += uint64(4 + 12 + len(v.pkt.Payload) + v.overhead)
		v.srPackets++
		v.srOctets += uint32(len(v.pkt.Payload))
	}
	v.pkt.Payload = nil
	if v.udp != nil && n > 0 && len(v.keys) < 64 {
		v.keys = append(v.keys, packetKey(ts, v.seq-1))
	}
	v.queued += n - handed
	v.bytes.Add(n)
	v.ds.Sent(int(n))
	if v.conn != nil {
		v.pending = append(v.pending, mark{v.queued, ref})
		if v.conn.onSent != nil {
			v.conn.addMark(v.queued, f.Received)
		}
	}
}

// goDirect switches a plain TCP viewer to writing its own packets once
// gortsplib has written the first ones, which show the interleaved
// channel and SSRC it announced in SETUP. Through gortsplib every packet
// costs an allocation, a marshal, a queue hand-off to another goroutine
// and a write deadline; written here, an access unit is one writev of
// the viewer's headers and the feed's shared payloads. The viewer sends
// its RTCP sender reports itself (see senderReport).
func (v *viewer) goDirect() {
	c := v.conn
	if c.rtpBytes.Load() < v.queued {
		return // still in gortsplib's queue: wait, so the order on the wire holds
	}
	ch, ssrc, ok := c.learned()
	if !ok {
		return
	}
	v.direct, v.channel, v.ssrc = true, ch, ssrc
}

// writeDirect writes unit u to the viewer's connection in one system call:
// per packet, the interleaved frame header (RFC 2326 10.12) and the RTP
// header (RFC 3550 5.1), then the payload shared by every viewer of the
// feed. A unit of up to wireChunk bytes (every picture but large
// keyframes) is first copied behind its headers into one buffer from the
// server's pool and written with write(2): on loopback that costs the
// kernel a quarter less than a writev(2) of two buffers per packet (the
// kernel's per-buffer work outweighs the copy, which costs a
// microsecond). A larger unit goes as a writev of the viewer's headers
// and the shared payloads, so that no viewer holds a copy of a large
// keyframe while its client is slow to take it.
func (v *viewer) writeDirect(u *rtpUnit, ts uint32, ref, received, now time.Time) {
	np := u.packets()
	n := 16*np + len(u.buf)
	if n <= wireChunk {
		v.chunk = v.s.wire.Get().(*[wireChunk]byte)
		b := v.chunk[:0]
		for i := range np {
			p := u.payload(i)
			b = v.header(b, ts, i == np-1, len(p))
			b = append(b, p...)
		}
		v.one[0] = b
		v.nb = v.one[:]
	} else {
		v.hdrs = slices.Grow(v.hdrs[:0], np*16)[:0]
		v.iov = v.iov[:0]
		for i := range np {
			p := u.payload(i)
			v.hdrs = v.header(v.hdrs, ts, i == np-1, len(p))
			v.iov = append(v.iov, v.hdrs[len(v.hdrs)-16:], p)
		}
		v.nb = v.iov
	}
	v.queued += uint64(n)
	v.srPackets += uint32(np)
	v.srOctets += uint32(len(u.buf))
	v.pending = append(v.pending, mark{v.queued, ref})
	if v.conn.onSent != nil {
		v.conn.addMark(v.queued, received)
	}
	if v.fanned {
		left, err := v.conn.tryWriteRTP(&v.nb, n, now)
		if err == nil && left != wroteAll {
			// The rest is in v.nb, for finishDirect from the viewer's
			// goroutine.
			v.rest, v.restLeft = n, left
			return
		}
		v.wrote(n, err)
		return
	}
	v.wrote(n, v.conn.writeRTP(&v.nb, n, now))
}

// finishDirect writes what the fan-out left of a unit, blocking as
// writeDirect does.
func (v *viewer) finishDirect() {
	n := v.rest
	v.rest = 0
	if v.restLeft == leftRest {
		v.wrote(n, v.conn.finishRTP(&v.nb, n))
		return
	}
	v.wrote(n, v.conn.writeRTP(&v.nb, n, time.Now()))
}

// wrote ends the write of a unit of n bytes: the pooled buffer goes back,
// and the unit is counted, or the connection ends.
func (v *viewer) wrote(n int, err error) {
	if v.chunk != nil {
		v.one[0], v.nb = nil, nil
		v.s.wire.Put(v.chunk)
		v.chunk = nil
	}
	if err != nil {
		// The client stopped reading for directWriteTimeout, or left:
		// end the connection, as gortsplib does when its own write
		// fails, and with it the session.
		v.s.log.Debug("rtsp: write failed, closing the connection", "feed", v.feed.name, "viewer", v.label, "err", err)
		_ = v.conn.Close()
		v.cancel()
		return
	}
	v.bytes.Add(uint64(n))
	v.ds.Sent(n)
}

// header appends the interleaved frame header and the RTP header of the
// viewer's next packet, with timestamp ts and a payload of size bytes,
// to b.
func (v *viewer) header(b []byte, ts uint32, last bool, size int) []byte {
	m := byte(payloadType)
	if last {
		m |= 0x80 // marker: the access unit's last packet (RFC 6184 5.1)
	}
	b = append(b, '$', v.channel)
	b = binary.BigEndian.AppendUint16(b, uint16(12+size))
	b = append(b, 0x80, m) // version 2
	b = binary.BigEndian.AppendUint16(b, v.seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	b = binary.BigEndian.AppendUint32(b, v.ssrc)
	v.seq++
	return b
}

// forgetKeys drops what rtpSocket noted for this viewer.
func (v *viewer) forgetKeys() {
	for _, k := range v.keys {
		v.udp.forget(k)
	}
	v.keys = v.keys[:0]
}

// sendUDP sends unit u to a unicast UDP viewer with one sendmmsg(2):
// per packet, the viewer's RTP header and the feed's shared payload. On
// Linux a run of equal-sized packets (an access unit's FU-As) goes as one
// message that the kernel segments (UDP GSO, gso_linux.go), so the IP and
// UDP work is done per run, not per packet; the datagrams on the wire are
// the same.
//
// UDP has no backlog to watch: what the client cannot take, its kernel
// drops, and the picture resumes at the next keyframe on its side.
func (v *viewer) sendUDP(u *rtpUnit, ts uint32) {
	np := u.packets()
	v.hdrs = slices.Grow(v.hdrs[:0], np*12)[:np*12]
	v.iov = slices.Grow(v.iov[:0], np*2)[:np*2]
	n := 0
	for i := range np {
		p := u.payload(i)
		h := v.hdrs[i*12 : i*12+12 : i*12+12]
		h[0] = 0x80 // version 2
		h[1] = payloadType
		if i == np-1 {
			h[1] |= 0x80 // marker: the access unit's last packet (RFC 6184 5.1)
		}
		binary.BigEndian.PutUint16(h[2:], v.seq)
		binary.BigEndian.PutUint32(h[4:], ts)
		binary.BigEndian.PutUint32(h[8:], v.pkt.SSRC)
		v.seq++
		v.iov[2*i], v.iov[2*i+1] = h, p
		n += 4 + 12 + len(p)
	}
	gso := v.udp.gso()
	v.batch(u, 0, gso)
	sent, err := v.udp.send(v.msgs, &v.mm)
	if err != nil && gso && gsoRefused(err) {
		// Segmentation is not to be had on this kernel or route: say so
		// once, and send the rest one datagram per message from now on.
		if v.udp.noGSO.CompareAndSwap(false, true) {
			v.s.log.Info("rtsp: UDP segmentation offload refused, sending one packet per datagram", "err", err)
		}
		v.batch(u, v.firsts[sent], false)
		_, err = v.udp.send(v.msgs, &v.mm)
	}
	if err != nil {
		// The picture is broken: resume at the next keyframe.
		v.s.log.Debug("rtsp: UDP send failed", "feed", v.feed.name, "viewer", v.label, "err", err)
		v.needKey = true
		v.drops.Add(1)
		v.ds.Skipped(1)
		v.s.noteSkip(v.feed.name, v.label)
		return
	}
	v.queued += uint64(n)
	v.srPackets += uint32(np)
	v.srOctets += uint32(len(u.buf))
	v.bytes.Add(uint64(n))
	v.ds.Sent(n)
}

// batch fills v.msgs with unit u's packets from the from'th on, whose
// headers and payloads are in v.iov: with gso, each run of packets of one
// size (and a shorter last one) in one message, within the kernel's
// limits; else one packet per message. v.firsts[k] is message k's first
// packet.
func (v *viewer) batch(u *rtpUnit, from int, gso bool) {
	np := u.packets()
	v.msgs, v.firsts = v.msgs[:0], v.firsts[:0]
	for i := from; i < np; {
		size := 12 + len(u.payload(i))
		j := i + 1
		if gso {
			for j < np && j-i < gsoMaxSegments && (j-i+1)*size <= gsoMaxBytes {
				l := 12 + len(u.payload(j))
				if l > size {
					break
				}
				j++
				if l < size {
					break // a shorter segment ends a run
				}
			}
		}
		m := ipv4.Message{Buffers: v.iov[2*i : 2*j : 2*j], Addr: v.dest}
		if j-i > 1 {
			v.oob = gsoControl(v.oob, size)
			m.OOB = v.oob
		}
		v.msgs = append(v.msgs, m)
		v.firsts = append(v.firsts, i)
		i = j
	}
}

// skips is the number of times the viewer jumped ahead to a keyframe.
func (v *viewer) skips() uint64 { return v.sub.Stats().Skips + v.drops.Load() + v.lateSkips.Load() }
