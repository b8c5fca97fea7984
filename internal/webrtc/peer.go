package webrtc

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/webrtc/congestion"
)

const (
	// peerQueue holds frames between the broadcaster and the sender; a
	// join puts up to a whole GOP in it at once.
	peerQueue = maxGOP + 64
	pliEvery  = 500 * time.Millisecond
	// stallGap: a browser sends a receiver report about once a second
	// (RFC 3550 §6.3.5 randomises the interval by 0.5–1.5); this much
	// silence means the path was down both ways, and the loss it reports
	// next is the stall's, not the link's capacity.
	stallGap = 2 * time.Second
)

// peer is one WHEP viewer. It is in the door from the POST (sess) and
// gets frames once connected (live).
type peer struct {
	id   string
	feed string
	s    *Server
	b    *broadcaster
	pc   *webrtc.PeerConnection
	tr   *track
	log  *slog.Logger
	sess *door.Session

	// Ages from the feed's lag budget. A frame older than stale when its
	// turn comes means the peer is behind: what is queued is dropped and
	// it resumes at a keyframe no older than fresh (asking the source
	// for one). In keyframe mode a keyframe may take up to keyAge to
	// arrive, paced; older than maxKeyAge it is never sent.
	stale, fresh, keyAge, maxKeyAge time.Duration

	q         chan *frame
	live      atomic.Bool   // joined the broadcaster: offer queues
	joinUntil atomic.Uint64 // frames up to this one are the join: sent however old
	lost      atomic.Bool   // q overflowed
	nacks     chan []uint16
	// restart asks sendLoop to drop what is queued and resume at a
	// keyframe: a PLI or FIR, or RTCP again after a stall.
	restart   atomic.Bool
	connected chan struct{}
	connOnce  sync.Once
	connTimer *time.Timer
	cc        *congestion.Link

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closed    chan struct{} // the peer connection is closed and forgotten

	sent     atomic.Uint64 // frames
	skipped  atomic.Uint64 // frames not sent: congestion, age, overflow
	lastAsk  time.Time     // sendLoop's: the last keyframe request
	lastPLI  time.Time     // rtcpLoop's
	lastRTCP time.Time     // rtcpLoop's
	started  time.Time
}

func newPeer(id, feed string, s *Server, pc *webrtc.PeerConnection, tr *track, sess *door.Session, lag time.Duration, remote string) *peer {
	if lag <= 0 {
		lag = hub.DefaultLagBudget
	}
	p := &peer{
		id: id, feed: feed, s: s, pc: pc, tr: tr, sess: sess,
		log:   s.log.With("feed", feed, "viewer", id[:8], "remote", remote),
		stale: lag, fresh: lag / 4, keyAge: 2 * lag, maxKeyAge: 4 * lag,
		q: make(chan *frame, peerQueue), nacks: make(chan []uint16, 16), started: time.Now(),
		connected: make(chan struct{}), closed: make(chan struct{}),
	}
	p.cc = newCongestion(p.started, p.keyAge)
	p.ctx, p.cancel = contextWithCancel()
	return p
}

// watchConnect closes the peer if its client has not connected within d.
func (p *peer) watchConnect(d time.Duration) {
	p.connTimer = time.AfterFunc(d, func() {
		select {
		case <-p.connected:
		default:
			p.close("never connected")
		}
	})
}

func (p *peer) offer(fr *frame) {
	if !p.live.Load() {
		return
	}
	select {
	case p.q <- fr:
	default:
		p.lost.Store(true)
		p.skipped.Add(1)
	}
}

// requestKeyframe asks the feed's source for a keyframe, when it can, at
// most once every pliEvery. Only sendLoop calls it.
func (p *peer) requestKeyframe() {
	kr := p.s.cfg.Keyframes
	if kr == nil || time.Since(p.lastAsk) < pliEvery {
		return
	}
	p.lastAsk = time.Now()
	kr.RequestKeyframe(p.feed)
}

// sendLoop writes the peer's frames. It is the only writer of the
// track, so sequence numbers need no lock.
func (p *peer) sendLoop() {
	// Packets written before DTLS completes are lost, and with them the
	// first keyframe: wait for the connection, then join the feed.
	select {
	case <-p.connected:
	case <-p.ctx.Done():
		return
	}
	p.connTimer.Stop()
	w, hdr := p.tr.writer()
	if w == nil {
		return
	}
	p.log.Debug("webrtc: viewer connected", "after", time.Since(p.started).Round(time.Millisecond).String())
	ps := &peerSender{p: p, w: w, hdr: hdr, seq: uint16(time.Now().UnixNano()), timer: time.NewTimer(time.Hour), needKey: true}
	defer ps.timer.Stop()
	p.b.join(p)
	for {
		var fr *frame
		select {
		case fr = <-p.q:
		case seqs := <-p.nacks:
			if !ps.retransmit(seqs) {
				return
			}
			continue
		case <-p.ctx.Done():
			return
		}
		if p.lost.Swap(false) {
			ps.skipToKey()
		}
		if p.restart.Swap(false) {
			if !ps.resume(fr) {
				return
			}
			continue
		}
		if fr != nil && !ps.send(fr) {
			return
		}
	}
}

// peerSender is sendLoop's state.
type peerSender struct {
	p   *peer
	w   webrtc.TrackLocalWriter
	hdr rtp.Header
	seq uint16 // RFC 3550 §5.1: random start
	// needKey: the browser's reference chain is broken (a frame was not
	// sent, or it lost one); only a keyframe may go next.
	needKey bool
	// lastN is the feed sequence number of the newest frame sent. Frames
	// go out in increasing order only, so RTP timestamps never go back:
	// a browser drops a frame older than one it decoded, and would then
	// decode the frames after it without their reference.
	lastN uint64
	timer *time.Timer
	hist  [histSize]sentPacket

	rtxWindow time.Time
	rtxBytes  int
	winBytes  int
}

// histSize is how many packets a peer can resend: at 2 Mbit/s, half a
// second; older ones are past their use to a low-latency jitter buffer.
const histSize = 512

// rtxMaxAge: a packet older than this is not resent. A browser holds a
// frame for its missing packets about one round trip plus a little.
const rtxMaxAge = 250 * time.Millisecond

// sentPacket remembers a sent packet by reference to its shared frame.
type sentPacket struct {
	fr     *frame
	idx    int
	seq    uint16
	at     time.Time
	nacked bool
}

// retransmit resends NACKed packets (RFC 4585 §6.2.1) on the same SSRC,
// while they are fresh, and within a budget: a fifth of what was sent in
// the last second in full mode, only keyframe packets in keyframe mode,
// because resending into a congested link only makes it worse.
func (ps *peerSender) retransmit(seqs []uint16) bool {
	p := ps.p
	now := time.Now()
	if now.Sub(ps.rtxWindow) > time.Second {
		ps.rtxWindow, ps.rtxBytes, ps.winBytes = now, 0, 0
	}
	mode, _, _ := p.cc.State()
	hdr := ps.hdr
	lost := 0
	defer func() { p.cc.Nacked(lost) }()
	for _, seq := range seqs {
		e := &ps.hist[seq%histSize]
		if e.fr == nil || e.seq != seq {
			continue
		}
		// Browsers repeat a NACK until the packet comes or they give
		// up; the link lost it once.
		if !e.nacked && now.Sub(e.at) < time.Second {
			e.nacked = true
			lost++
		}
		if now.Sub(e.at) > rtxMaxAge {
			continue
		}
		if mode == modeKeyframes && !e.fr.keyframe {
			continue
		}
		pkt := e.fr.pkts[e.idx]
		if ps.rtxBytes+len(pkt.payload) > ps.winBytes/5+4*maxPayload {
			break
		}
		ps.rtxBytes += len(pkt.payload)
		hdr.SequenceNumber, hdr.Timestamp, hdr.Marker = seq, e.fr.ts, pkt.marker
		if _, err := ps.w.WriteRTP(&hdr, pkt.payload); err != nil {
			p.close("write: " + err.Error())
			return false
		}
	}
	return true
}

// skipToKey breaks the chain: nothing but a keyframe goes next. The
// door counts one skip for each such move, as the hub does for a Sub.
func (ps *peerSender) skipToKey() {
	if !ps.needKey {
		ps.needKey = true
		ps.p.sess.Skipped(1)
	}
}

// resume drops what is queued and continues at the newest keyframe: the
// cached one when it is fresh (in full mode, a quarter of the lag budget)
// and not sent yet, else the next one, which the source is asked to make
// now. Frames already queued are behind the live edge by the time the
// browser could show them; sending them in a burst would also teach its
// jitter buffer a delay it then keeps.
func (ps *peerSender) resume(fr *frame) bool {
	p := ps.p
	if fr != nil && fr.n > ps.lastN {
		p.skipped.Add(1)
	}
	for drained := false; !drained; {
		select {
		case fr := <-p.q:
			if fr != nil && fr.n > ps.lastN {
				p.skipped.Add(1)
			}
		default:
			drained = true
		}
	}
	ps.skipToKey()
	// In keyframe mode the link admits a keyframe up to keyAge old (its
	// transfer is paced), and the peer's keyframes come as its bucket
	// allows: asking the source for more would raise every viewer's
	// bitrate and give this one nothing.
	fresh, ask := p.fresh, true
	if mode, _, _ := p.cc.State(); mode == modeKeyframes {
		fresh, ask = p.keyAge, false
	}
	gop := p.b.newestKey(ps.lastN, fresh)
	if gop == nil && ask {
		p.requestKeyframe()
	}
	for _, fr := range gop {
		if !ps.send(fr) {
			return false
		}
	}
	return true
}

// send writes fr unless the peer's state says to skip it; it returns
// false when the peer is gone. A picture goes out whole or not at all:
// skipping is by frame, and a skipped frame breaks the chain until the
// next keyframe, so the browser never decodes a picture whose reference
// it did not get.
func (ps *peerSender) send(fr *frame) bool {
	p := ps.p
	if fr.n <= ps.lastN {
		return true // sent already (a join or resume overlaps the queue)
	}
	now := time.Now()
	age := now.Sub(fr.received)
	join := fr.n <= p.joinUntil.Load()
	mode, _, _ := p.cc.State()
	if !join && (age > p.maxKeyAge || mode == modeFull && age > p.stale) {
		// Behind the live edge: the queue holds only older frames.
		p.skipped.Add(1)
		p.restart.Store(true)
		return true
	}
	d := p.cc.Admit(now, fr.keyframe, fr.size, age)
	if d.Switched {
		mode, rate, _ := p.cc.State()
		p.log.Info("webrtc: viewer link", "mode", mode, "rate_kbps", int(rate/1000))
	}
	if d.NeedKey {
		ps.skipToKey()
	}
	if !fr.keyframe && ps.lastN != 0 && fr.n != ps.lastN+1 {
		ps.skipToKey() // a picture in between was not sent: the chain is broken
	}
	if !d.Send || (ps.needKey && !fr.keyframe) {
		ps.skipToKey()
		p.skipped.Add(1)
		return true
	}
	ps.needKey = false
	var debt time.Duration
	for i, pkt := range fr.pkts {
		ps.hist[ps.seq%histSize] = sentPacket{fr: fr, idx: i, seq: ps.seq, at: now}
		ps.hdr.SequenceNumber = ps.seq
		ps.hdr.Timestamp = fr.ts
		ps.hdr.Marker = pkt.marker
		ps.seq++
		if _, err := ps.w.WriteRTP(&ps.hdr, pkt.payload); err != nil {
			p.close("write: " + err.Error())
			return false
		}
		if d.Pace > 0 {
			// Pace a keyframe at the link's rate, a few packets at a
			// time, so no queue on the way drops its tail.
			debt += time.Duration(float64(len(pkt.payload)*8) / d.Pace * float64(time.Second))
			if debt >= 5*time.Millisecond {
				ps.timer.Reset(debt)
				select {
				case <-ps.timer.C:
				case <-p.ctx.Done():
					return false
				}
				debt = 0
			}
		}
	}
	ps.lastN = fr.n
	ps.winBytes += fr.size
	p.cc.Sent(len(fr.pkts), fr.size)
	p.sent.Add(1)
	p.sess.Sent(fr.size)
	return true
}

// rtcpLoop reads what the browser reports: loss for the link estimate,
// and PLI/FIR, which it answers by restarting this peer at the next
// keyframe (and asking the source for one when it can make one).
func (p *peer) rtcpLoop(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		if !p.lastRTCP.IsZero() && now.Sub(p.lastRTCP) > stallGap {
			// The path was down and is back. What the browser reports
			// now is the stall's loss: not a reason to think the link
			// slow. Restart at a fresh keyframe.
			p.cc.Recovered(now)
			p.log.Info("webrtc: viewer back after a stall", "silent", now.Sub(p.lastRTCP).Round(time.Millisecond).String())
			p.askRestart(now)
		}
		p.lastRTCP = now
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.askRestart(now)
			case *rtcp.TransportLayerNack:
				select {
				case p.nacks <- congestion.Seqs(pkt):
				default: // the sender is busy pacing; the browser will ask again
				}
			case *rtcp.ReceiverReport:
				p.cc.Report(pkt, p.tr.ssrcValue(), now)
			}
		}
	}
}

// askRestart has sendLoop restart at a keyframe (resume), at most once
// every pliEvery: a browser repeats its PLI until a keyframe comes.
func (p *peer) askRestart(now time.Time) {
	if now.Sub(p.lastPLI) < pliEvery {
		return
	}
	p.lastPLI = now
	p.log.Debug("webrtc: viewer lost its picture", "after", now.Sub(p.started).Round(time.Millisecond).String(), "frames_sent", p.sent.Load())
	p.restart.Store(true)
	// Wake sendLoop when the queue is empty.
	select {
	case p.q <- nil:
	default:
	}
}

func (t *track) ssrcValue() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ssrc
}

// close ends the peer; safe to call more than once, from anywhere.
//
// The viewer's slot is free when close returns; the peer connection
// closes in the background.
func (p *peer) close(reason string) {
	p.closeOnce.Do(func() {
		p.cancel()
		p.sess.Leave(reason)
		go func() {
			defer close(p.closed)
			_ = p.pc.Close()
			p.s.removePeer(p)
			// The door writes the rate-limited "viewer left" line with the
			// reason and counters; this adds the link's story, for debugging.
			_, _, switches := p.cc.State()
			p.log.Debug("webrtc: peer closed", "reason", reason, "frames", p.sent.Load(), "skipped", p.skipped.Load(),
				"keyframe_mode_switches", switches, "duration", time.Since(p.started).Round(time.Second))
		}()
	})
}
