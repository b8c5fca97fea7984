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
)

const (
	peerQueue = 256 // frames; a peer this far behind restarts at a keyframe
	// maxAge: a frame older than this when its turn comes is not worth
	// sending; the peer skips to a keyframe instead ("within 1 s of live").
	maxAge    = time.Second
	maxKeyAge = 2 * time.Second
	pliEvery  = 500 * time.Millisecond
)

// peer is one WHEP viewer.
type peer struct {
	id   string
	feed string
	s    *Server
	b    *broadcaster
	pc   *webrtc.PeerConnection
	tr   *track
	log  *slog.Logger

	q     chan *frame // nil asks for a restart at the next keyframe
	lost  atomic.Bool // q overflowed
	nacks chan []uint16
	// resend asks sendLoop to resend the cached GOP (after a PLI).
	resend    atomic.Bool
	connected chan struct{}
	connOnce  sync.Once
	cc        *congestion

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once

	seq     uint16
	sent    atomic.Uint64 // frames
	skipped atomic.Uint64 // frames not sent: congestion, age, overflow
	bytes   atomic.Uint64
	lastPLI time.Time
	started time.Time
}

func (p *peer) offer(fr *frame) {
	select {
	case p.q <- fr:
	default:
		p.lost.Store(true)
		p.skipped.Add(1)
	}
}

// sendLoop writes the peer's frames. It is the only writer of the
// track, so sequence numbers need no lock.
func (p *peer) sendLoop() {
	// Packets written before DTLS completes are lost, and with them the
	// first keyframe: wait for the connection, then send the GOP so far.
	select {
	case <-p.connected:
	case <-p.ctx.Done():
		return
	}
	w, hdr := p.tr.writer()
	if w == nil {
		return
	}
	ps := &peerSender{p: p, w: w, hdr: hdr, seq: uint16(time.Now().UnixNano()), timer: time.NewTimer(time.Hour)}
	defer ps.timer.Stop()
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
			ps.needKey = true
		}
		if p.resend.Swap(false) {
			// The browser lost a picture (PLI/FIR). Sources cannot always
			// make a keyframe at once, so resend the cached GOP: the
			// browser decodes it in a burst and is live again, instead of
			// frozen until the next keyframe.
			ps.needKey = true
			for _, g := range p.b.gopSnapshot() {
				if !ps.send(g, true) {
					return
				}
			}
		}
		if fr == nil {
			continue
		}
		if !ps.send(fr, false) {
			return
		}
	}
}

// peerSender is sendLoop's state.
type peerSender struct {
	p       *peer
	w       webrtc.TrackLocalWriter
	hdr     rtp.Header
	seq     uint16 // RFC 3550 §5.1: random start
	needKey bool
	lastN   uint64 // feed sequence number of the newest frame sent
	timer   *time.Timer
	hist    [histSize]sentPacket

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
	mode, _, _ := p.cc.state()
	hdr := ps.hdr
	lost := 0
	defer func() { p.cc.nacked(lost) }()
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

// send writes fr unless the peer's state says to skip it; it returns
// false when the peer is gone. A resent frame may repeat one sent before.
func (ps *peerSender) send(fr *frame, resend bool) bool {
	p := ps.p
	if fr.n <= ps.lastN && !resend && ps.lastN != 0 {
		return true // already sent in a resent GOP
	}
	now := time.Now()
	age := now.Sub(fr.received)
	if (!fr.keyframe && age > maxAge) || age > maxKeyAge {
		ps.needKey = true
		p.skipped.Add(1)
		return true
	}
	d := p.cc.admit(now, fr.keyframe, fr.size, age)
	if d.switched {
		mode, rate, _ := p.cc.state()
		p.log.Info("webrtc: viewer link", "mode", mode, "rate_kbps", int(rate/1000))
	}
	if d.needKey {
		ps.needKey = true
	}
	if !fr.keyframe && !resend && ps.lastN != 0 && fr.n != ps.lastN+1 {
		ps.needKey = true // a picture in between was not sent: the chain is broken
	}
	if !d.send || (ps.needKey && !fr.keyframe) {
		if fr.keyframe {
			ps.needKey = true
		}
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
		if d.pace > 0 {
			// Pace a keyframe at the link's rate, a few packets at a
			// time, so no queue on the way drops its tail.
			debt += time.Duration(float64(len(pkt.payload)*8) / d.pace * float64(time.Second))
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
	ps.lastN = max(ps.lastN, fr.n)
	ps.winBytes += fr.size
	p.cc.sent(len(fr.pkts), fr.size)
	p.sent.Add(1)
	p.bytes.Add(uint64(fr.size))
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
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if now.Sub(p.lastPLI) >= pliEvery {
					p.lastPLI = now
					p.resend.Store(true)
					p.offer(nil)
					if kr, ok := p.s.feeds.(KeyframeRequester); ok {
						kr.RequestKeyframe(p.feed)
					}
				}
			case *rtcp.TransportLayerNack:
				var seqs []uint16
				for _, pair := range pkt.Nacks {
					pair.Range(func(seq uint16) bool {
						seqs = append(seqs, seq)
						return true
					})
				}
				select {
				case p.nacks <- seqs:
				default: // the sender is busy pacing; the browser will ask again
				}
			case *rtcp.ReceiverReport:
				for _, r := range pkt.Reports {
					if r.SSRC == p.tr.ssrcValue() {
						p.cc.receiverReport(r.FractionLost, r.TotalLost, r.LastSequenceNumber, now)
					}
				}
			}
		}
	}
}

func (t *track) ssrcValue() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ssrc
}

// close ends the peer; safe to call more than once, from anywhere.
func (p *peer) close(reason string) {
	p.closeOnce.Do(func() {
		p.cancel()
		go func() {
			_ = p.pc.Close()
			p.s.removePeer(p)
			_, _, switches := p.cc.state()
			p.log.Info("webrtc: viewer left", "reason", reason, "frames", p.sent.Load(), "skipped", p.skipped.Load(),
				"keyframe_mode_switches", switches, "duration", time.Since(p.started).Round(time.Second))
		}()
	})
}
