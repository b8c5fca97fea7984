package srt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	gosrt "github.com/datarhei/gosrt"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/pushnet"
)

// Errors a caller can branch on; each comes wrapped with the target's
// name (srt://host:port) and details in words.
var (
	// ErrNoAnswer: nothing answered the handshake within the timeout
	// (nothing listening, a firewall, a wrong host or port).
	ErrNoAnswer = errors.New("no answer")
	// ErrRejected: the server answered and refused the connection. A
	// retry with the same URL will be refused again, so retry slowly.
	ErrRejected = errors.New("connection rejected by the server")
	// ErrGone: the connection ended while pushing (the receiver closed it,
	// went away, or stopped answering for the timeout).
	ErrGone = errors.New("the connection ended")
)

// DefaultTimeout is Options.Timeout when zero.
const DefaultTimeout = pushnet.DefaultTimeout

// minDialTimeout is the least time gosrt gets for its handshake after
// probe: a listener that answered a moment ago answers in a round trip.
const minDialTimeout = 500 * time.Millisecond

// payloadSize is seven TS packets, the SRT live-mode payload every
// receiver expects (libsrt's SRTO_PAYLOADSIZE default): a datagram never
// splits a TS packet.
const payloadSize = 7 * 188

// paceLimit is how much sent but unacknowledged video WriteUnit lets
// build up before it waits for acknowledgements: the backstop for a
// receiver that stops acknowledging without closing (the uplink's pacing,
// in uplink.go, handles a slow one). Waiting turns it into lag the caller
// sees, and it skips to a keyframe, so what arrives stays decodable.
const paceLimit = 500 * time.Millisecond

// wireOverhead is what a datagram carries besides its payload: the SRT,
// UDP and IPv4 headers (gosrt counts the same in its statistics).
const wireOverhead = 16 + 8 + 20

// ptsOffset starts the 90 kHz clock at one second: mediacommon's writer
// puts the PCR 100 ms before the DTS, which must not go below zero.
const ptsOffset = 90000

// Options tune a push (pushnet.Options, the same for every protocol).
type Options = pushnet.Options

// Writer pushes one feed to one SRT receiver as MPEG-TS. WriteUnit is
// called from one goroutine; Close may be called from any, once or more.
type Writer struct {
	name    string
	conn    gosrt.Conn
	log     *slog.Logger
	timeout time.Duration

	buf   bytes.Buffer
	ts    mpegts.Writer
	track *mpegts.Track
	nalus [][]byte
	stats gosrt.Statistics
	up    uplink
	// sentBytes and sentPkts count the payload gosrt took, for what the
	// receiver acknowledged (gosrt says what it still holds).
	sentBytes, sentPkts uint64
	// aud leads every PES packet: mediacommon would otherwise allocate
	// to prepend one (video.js, iOS and QuickTime need it).
	aud [2]byte

	closeOnce sync.Once
	closed    chan struct{}
	readDone  chan struct{}
	mu        sync.Mutex
	gone      error // why the connection ended, set once
}

// Dial connects to the SRT listener that target names, in caller mode, and
// returns a Writer ready for the first unit (a keyframe with SPS/PPS).
// It returns within opt.Timeout (half a second more at worst, see
// minDialTimeout), or when ctx ends.
func Dial(ctx context.Context, target *url.URL, params hub.Params, opt Options) (*Writer, error) {
	t, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	cfg := gosrt.DefaultConfig()
	cfg.ConnectionTimeout = opt.Timeout
	cfg.PeerIdleTimeout = opt.Timeout
	cfg.PayloadSize = payloadSize
	cfg.StreamId = t.streamID
	cfg.Passphrase = t.passphrase
	if t.keyLen != 0 {
		cfg.PBKeylen = t.keyLen
	}
	if t.latency >= 0 {
		cfg.Latency = t.latency
	}
	conn, err := dial(ctx, t.addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, describe(err, opt.Timeout))
	}
	w := &Writer{
		name: t.String(), conn: conn, log: opt.Log, timeout: opt.Timeout,
		track: &mpegts.Track{Codec: &codecs.H264{}},
		nalus: make([][]byte, 0, 8), aud: [2]byte{byte(h264.NALUTypeAUD), 0xf0},
		closed: make(chan struct{}), readDone: make(chan struct{}),
	}
	w.ts = mpegts.Writer{W: &w.buf, Tracks: []*mpegts.Track{w.track}}
	if err := w.ts.Initialize(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: mpeg-ts: %w", t, err)
	}
	go w.watch()
	w.log.Debug("srt: connected", "width", params.Info.Width, "height", params.Info.Height,
		"latency", t.latency, "encrypted", t.passphrase != "")
	return w, nil
}

// dial runs gosrt's Dial, which takes no context, so that ctx can end the
// wait, once probe has seen a listener answer at addr (gosrt leaks on a
// dial that fails, see probe). The two share cfg.ConnectionTimeout. An
// abandoned dial finishes by itself within the connect timeout and its
// connection is closed.
func dial(ctx context.Context, addr string, cfg gosrt.Config) (gosrt.Conn, error) {
	start := time.Now()
	if err := probe(ctx, addr, cfg.ConnectionTimeout); err != nil {
		return nil, err
	}
	cfg.ConnectionTimeout = max(cfg.ConnectionTimeout-time.Since(start), minDialTimeout)
	type result struct {
		conn gosrt.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := gosrt.Dial("srt", addr, cfg)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.conn != nil {
				r.conn.Close()
				drainDialer(r.conn, make([]byte, gosrt.MAX_PAYLOAD_SIZE))
			}
		}()
		return nil, ctx.Err()
	}
}

// describe turns a gosrt dial error into words. gosrt returns plain
// formatted errors with no types to test, so its messages are matched
// here, in one place; the tests against srt-live-transmit check that
// each case still reads as intended.
func describe(err error, timeout time.Duration) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoAnswer) {
		return err // in words already (probe's own)
	}
	msg := err.Error()
	if _, code, ok := strings.Cut(msg, "REJECT ("); ok {
		// gosrt prints the handshake's rejection code in base 32.
		n, _ := strconv.ParseUint(strings.TrimSuffix(code, ")"), 32, 32)
		return fmt.Errorf("%w (%s)", ErrRejected, rejectReason(n))
	}
	if strings.Contains(msg, "connection timeout") {
		return fmt.Errorf("%w in %v", ErrNoAnswer, timeout)
	}
	return fmt.Errorf("could not connect: %w", err)
}

// rejectReason words a handshake rejection code: libsrt's (srt.h
// SRT_REJ_*, sent as 1000 + reason) and the access-control ones servers
// use for stream ids (MediaMTX, SRS; libsrt's access_control.h).
func rejectReason(code uint64) string {
	switch gosrt.RejectionReason(code) {
	case gosrt.REJ_BADSECRET:
		return "wrong passphrase"
	case gosrt.REJ_UNSECURE:
		return "the server wants a passphrase, or none: check passphrase="
	case gosrt.REJ_RESOURCE, gosrt.REJ_BACKLOG, gosrt.REJX_OVERLOAD:
		return "the server is out of resources or too busy"
	case gosrt.REJ_VERSION, gosrt.REJX_VERSION:
		return "the server's SRT version is not compatible"
	case gosrt.REJX_UNAUTHORIZED, gosrt.REJX_FORBIDDEN:
		return "access denied: check streamid="
	case gosrt.REJX_NOTFOUND:
		return "no such stream: check streamid="
	case gosrt.REJX_BAD_REQUEST, gosrt.REJX_BAD_MODE:
		return "the server cannot read the stream id: check streamid="
	case gosrt.REJX_CONFLICT, gosrt.REJX_LOCKED:
		return "the stream is already being published"
	}
	return "wrong passphrase or stream id?"
}

// watch reads the connection until it ends. A caller that only sends
// gets no data back, so the read ends only when the connection does: the
// receiver closed it, or it was silent for the peer idle timeout. Its
// reason is kept for WriteUnit.
func (w *Writer) watch() {
	defer close(w.readDone)
	buf := make([]byte, gosrt.MAX_PAYLOAD_SIZE)
	var err error
	for err == nil {
		_, err = w.conn.Read(buf)
	}
	w.setGone(err)
	w.conn.Close()
	drainDialer(w.conn, buf)
}

// drainDialer works around a leak in gosrt v0.11.0: its socket reader
// reports its end on an unbuffered channel that the dialer's Close reads
// only if the report is already waiting. Read takes that report when it
// is there, so a few reads after Close let the reader goroutine end.
func drainDialer(conn gosrt.Conn, buf []byte) {
	for range 20 {
		if _, err := conn.Read(buf); err != io.EOF {
			return // the report, taken
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *Writer) setGone(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone != nil {
		return
	}
	select {
	case <-w.closed:
		w.gone = fmt.Errorf("%s: closed", w.name)
	default:
		w.gone = fmt.Errorf("%s: %w: the receiver closed it or stopped answering", w.name, ErrGone)
		w.log.Debug("srt: connection ended", "cause", err)
	}
}

func (w *Writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}

// WriteUnit sends one access unit as one PES packet. pts is the unit's
// presentation time on the caller's monotonic clock; DTS equals PTS (no
// B-frames). It waits while more than paceLimit of video is unacknowledged,
// and fails once the connection has ended.
func (w *Writer) WriteUnit(au *h264.AccessUnit, pts time.Duration) error {
	if err := w.err(); err != nil {
		return err
	}
	select {
	case <-w.closed:
		return fmt.Errorf("%s: closed", w.name)
	default:
	}
	w.nalus = append(w.nalus[:0], w.aud[:])
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case 0, h264.NALUTypeAUD, h264.NALUTypeFiller:
			continue
		}
		w.nalus = append(w.nalus, n)
	}
	if len(w.nalus) == 1 {
		return nil
	}
	// What the uplink owes (a cut's queue to drain, resends) is waited
	// out before the unit's first datagram, not in its middle: a push
	// stopped while it waits leaves the receiver no half picture.
	now := time.Now()
	if w.up.due(now) {
		w.sample(now)
	}
	if d := w.up.owed(now); d > 0 {
		if err := w.wait(d); err != nil {
			return err
		}
	}
	ts := ptsOffset + ticks90k(pts)
	w.buf.Reset()
	if err := w.ts.WriteH264(w.track, ts, ts, w.nalus); err != nil {
		return fmt.Errorf("%s: mpeg-ts: %w", w.name, err)
	}
	if err := w.send(w.buf.Bytes()); err != nil {
		return err
	}
	return w.settle()
}

// ticks90k puts d on the 90 kHz clock, rounded to the nearest tick, so a
// frame period in nanoseconds (33333333 at 30 fps) gives 3000 every time.
func ticks90k(d time.Duration) int64 {
	s, r := int64(d/time.Second), int64(d%time.Second)
	return s*90000 + (r*90000+int64(time.Second)/2)/int64(time.Second)
}

// send hands b to gosrt one datagram at a time, each when the uplink's
// pacing lets it go (on a link never seen short, at once: no clock read).
// Closed while it paces, it hands over the rest of the unit unpaced and
// fails: the receiver's last picture is then whole (see Close).
func (w *Writer) send(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), payloadSize)
		if w.up.rate > 0 {
			if d := w.up.take(time.Now(), n+wireOverhead); d > 0 {
				if err := w.wait(d); err != nil {
					w.flush(b)
					return err
				}
			}
		}
		if err := w.write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// flush offers b to gosrt once, unpaced, if the Writer was closed while
// the connection is still up.
func (w *Writer) flush(b []byte) {
	if w.err() != nil {
		return
	}
	for len(b) > 0 {
		n := min(len(b), payloadSize)
		if _, err := w.conn.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
}

// write hands one datagram to gosrt. gosrt's Write never blocks: it
// fails with io.EOF when its queue (1024 packets) is full as well as when
// the connection is closed. A datagram it refused was not queued, so it
// is offered again once gosrt has had time to take the queue, until the
// connection ends or the timeout passes.
func (w *Writer) write(p []byte) error {
	var deadline time.Time
	for {
		if _, err := w.conn.Write(p); err == nil {
			w.sentBytes += uint64(len(p))
			w.sentPkts++
			return nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(w.timeout)
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w: the send queue stayed full for %v", w.name, ErrGone, w.timeout)
		}
		if err := w.wait(time.Millisecond); err != nil {
			return err
		}
	}
}

// sample reads gosrt's statistics into w.stats and gives the uplink's
// estimate what it needs, when it is due.
func (w *Writer) sample(now time.Time) {
	w.conn.Stats(&w.stats)
	if !w.up.due(now) || w.sentPkts == 0 {
		return
	}
	acc, in := &w.stats.Accumulated, &w.stats.Instantaneous
	mean := w.sentBytes / w.sentPkts
	// What gosrt no longer holds was acknowledged, or dropped as too old.
	gone := w.sentPkts - min(w.sentPkts, in.PktSendBuf)
	ackedPkts := gone - min(gone, acc.PktSendDrop)
	acked := w.sentBytes - min(w.sentBytes, in.ByteSendBuf+acc.PktSendDrop*mean)
	rate := w.up.rate
	if w.up.observe(linkSample{
		at: now, acked: acked + ackedPkts*wireOverhead, resent: acc.ByteRetrans,
		lost: acc.PktSendLoss, sent: w.sentPkts, rtt: time.Duration(in.MsRTT * float64(time.Millisecond)),
		pending: in.ByteSendBuf + in.PktSendBuf*wireOverhead, span: time.Duration(in.MsSendBuf) * time.Millisecond,
	}) {
		w.log.Debug("srt: uplink short: pacing", "rate_kbps", int(w.up.rate*8/1000),
			"was_kbps", int(rate*8/1000), "lost", acc.PktSendLoss, "resent", acc.PktRetrans, "rtt_ms", in.MsRTT, "unacked_ms", in.MsSendBuf)
	}
}

// settle waits until the unacknowledged span is under paceLimit plus a
// round trip (which a healthy long path always has in flight), the
// connection ends, or the timeout passes (the peer is then as good as
// gone: it neither acknowledges nor closes). It reads the statistics
// send last sampled, fresh ones while it waits.
func (w *Writer) settle() error {
	var deadline time.Time
	for {
		in := w.stats.Instantaneous
		rtt := time.Duration(in.MsRTT * float64(time.Millisecond))
		if time.Duration(in.MsSendBuf)*time.Millisecond <= paceLimit+rtt {
			return nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(w.timeout)
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w: nothing acknowledged for %v", w.name, ErrGone, w.timeout)
		}
		if err := w.wait(10 * time.Millisecond); err != nil {
			return err
		}
		w.sample(time.Now())
	}
}

// wait sleeps for d, or returns why the push ended meanwhile.
func (w *Writer) wait(d time.Duration) error {
	select {
	case <-w.closed:
		return fmt.Errorf("%s: closed", w.name)
	case <-w.readDone:
		return w.err()
	case <-time.After(d):
		return nil
	}
}

// Close lingers at most ackWaitMax + holdMax: a stop (or a feed's new
// parameters) is not held longer by a receiver with a latency of seconds.
const (
	ackWaitMax = 2 * time.Second // for the receiver to acknowledge what was sent
	holdMax    = 5 * time.Second // for it to play that out: its latency, and a round trip
)

// Close ends the connection (SRT sends a shutdown to the receiver) and
// waits for the Writer's goroutine. A write under way fails at once, but
// the connection lingers (see linger) until the receiver has
// acknowledged what was sent and held it for its latency: the receiver
// drops what it holds when the connection closes, and a paced unit's
// datagrams carry different send times, so closing at once would leave
// it a half picture.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		close(w.closed)
		w.linger()
		w.conn.Close()
	})
	<-w.readDone
	return nil
}

// linger waits until the receiver has acknowledged everything (at most
// ackWaitMax) and then played it out (its latency and a round trip, at
// most holdMax), or the connection ends.
func (w *Writer) linger() {
	deadline := time.Now().Add(ackWaitMax)
	var st gosrt.Statistics
	// What was just written may still be on its way into gosrt's send
	// buffer, which its ticker fills every 10 ms.
	if w.waitEnd(20 * time.Millisecond) {
		return
	}
	for {
		w.conn.Stats(&st)
		if st.Instantaneous.PktSendBuf == 0 {
			break
		}
		if time.Now().After(deadline) || w.waitEnd(10*time.Millisecond) {
			return
		}
	}
	// The last packet was sent at most now, so the receiver hands it on
	// within its latency; the acknowledgement took half a round trip to
	// come back. A bound shared with the wait above cut this short on a
	// long latency (2.5 s), and with it the receiver's last pictures.
	in := st.Instantaneous
	hold := time.Duration(in.MsSendTsbPdDelay)*time.Millisecond + time.Duration(in.MsRTT*float64(time.Millisecond))
	w.waitEnd(min(hold, holdMax))
}

// waitEnd sleeps for d and reports whether the connection ended meanwhile.
func (w *Writer) waitEnd(d time.Duration) bool {
	select {
	case <-w.readDone:
		return true
	case <-time.After(d):
		return false
	}
}
