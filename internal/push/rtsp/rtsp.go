// Package rtsp pushes a feed to an RTSP or RTSPS server (MediaMTX, another
// camfeed's publish source, ffmpeg -rtsp_flags listen) with the gortsplib
// client: ANNOUNCE, SETUP over TCP (interleaved, so no packet is lost on
// the way and a slow uplink shows as back-pressure), RECORD. WriteUnit
// blocks while more than unsentLimit bytes wait in gortsplib's queue, so
// a slow uplink's backlog is the hub's to skip to a keyframe; Close lets
// the queue go out first, so the last picture is whole.
package rtsp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/pushnet"
	"github.com/camfeed/camfeed/internal/push/pushurl"
)

// Options tune a push (pushnet.Options, the same for every protocol).
type Options = pushnet.Options

// DefaultTimeout is Options.Timeout when zero.
const DefaultTimeout = pushnet.DefaultTimeout

// writeQueue is gortsplib's queue of outgoing packets: a keyframe of a
// large picture is hundreds of packets, and the queue must take one whole.
const writeQueue = 2048

// unsentLimit is how many bytes handed to gortsplib may wait for the
// connection before WriteUnit blocks. A slow uplink then holds the push
// up, so the hub skips it to a keyframe, rather than filling gortsplib's
// queue, which nothing can skip (and which then drops a unit's tail).
const unsentLimit = 64 << 10

// closeGrace is how long Close waits for what gortsplib still queues to
// go out while none does (the wait goes on while bytes move), so the
// server does not get a last picture cut short.
const closeGrace = time.Second

// countingConn counts the interleaved RTP bytes the connection took, for
// WriteUnit's backpressure and Close's flush. gortsplib writes one frame
// per Write ('$', channel, length, packet: RFC 2326 10.12); RTP goes on
// its even channel, RTCP on the odd one, and RTSP requests are text.
// Counting RTCP too would let Close believe a unit's last packets gone
// when sender reports made up their size. Under RTSPS gortsplib puts TLS
// above this connection, so all it sees is records, and it counts them
// all (the count then runs a little ahead).
type countingConn struct {
	net.Conn
	written *atomic.Uint64
	wake    chan struct{}
	all     bool // RTSPS: count every byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.all || len(p) >= 4 && p[0] == '$' && p[1]%2 == 0 {
		c.written.Add(uint64(n))
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return n, err
}

// Writer is one recording session.
type Writer struct {
	c       *gortsplib.Client
	media   *description.Media
	enc     *rtph264.Encoder
	addr    string
	timeout time.Duration
	log     *slog.Logger
	nalus   [][]byte
	waitKey bool // packets were dropped: send nothing until a keyframe

	// written counts the bytes the connection took (countingConn); queued
	// those handed to gortsplib, on the same scale. mu keeps Close and
	// WriteUnit's handing over of a unit apart.
	written *atomic.Uint64
	wake    chan struct{}
	queued  uint64
	closed  bool // Close has begun: WriteUnit hands nothing more over
	mu      sync.Mutex

	done    chan struct{} // closed when the client has stopped
	waitErr error         // why, valid after done
	once    sync.Once
	wg      sync.WaitGroup
}

// Dial connects to target (rtsp://[user:pass@]host[:port]/path, or
// rtsps://) and starts recording a stream with params' SPS and PPS. Its
// errors say what went wrong in words and name the target by
// scheme://host:port only.
func Dial(ctx context.Context, target *url.URL, params hub.Params, opt Options) (*Writer, error) {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := pushurl.Addr(target)
	forma := &format.H264{PayloadTyp: 96, SPS: params.SPS, PPS: params.PPS, PacketizationMode: 1}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	enc, err := forma.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	proto := gortsplib.ProtocolTCP
	written, wake := &atomic.Uint64{}, make(chan struct{}, 1)
	dialer := &pushnet.Dialer{Timeout: timeout}
	c := &gortsplib.Client{
		Protocol: &proto, ReadTimeout: timeout, WriteTimeout: timeout, WriteQueueSize: writeQueue,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, written: written, wake: wake, all: target.Scheme == "rtsps"}, nil
		},
	}
	err = startRecording(ctx, c, target, &description.Session{Medias: []*description.Media{media}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %s", addr, words(err, timeout))
	}
	w := &Writer{c: c, media: media, enc: enc, addr: addr, timeout: timeout, log: log, done: make(chan struct{}),
		written: written, wake: wake, queued: written.Load()} // RTSPS counted the handshake
	w.wg.Go(func() {
		w.waitErr = c.Wait()
		close(w.done)
	})
	return w, nil
}

// startRecording is gortsplib's Client.StartRecording, with a cancel of
// ctx while a request waits for the server ending the request. Close may
// only come once Start has returned: gortsplib's Start sets up what Close
// reads, and the race detector caught a cancel in between.
func startRecording(ctx context.Context, c *gortsplib.Client, target *url.URL, desc *description.Session) error {
	u, err := base.ParseURL(target.String())
	if err != nil {
		return err
	}
	c.Scheme, c.Host = u.Scheme, u.Host
	if err := c.Start(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	if _, err = c.Announce(u, desc); err == nil {
		if err = c.SetupAll(u, desc.Medias); err == nil {
			_, err = c.Record()
		}
	}
	if err != nil {
		c.Close()
	}
	return err
}

// WriteUnit sends one access unit at pts. gortsplib queues the packets;
// when its queue is full, the rest of the unit is dropped and nothing is
// sent until the next keyframe, so the server never gets a picture whose
// reference is missing.
func (w *Writer) WriteUnit(au *h264.AccessUnit, pts time.Duration) error {
	select {
	case <-w.done:
		return errors.New(words(w.waitErr, w.timeout))
	default:
	}
	if w.waitKey && !au.Keyframe {
		return nil
	}
	if err := w.drain(unsentLimit, w.timeout); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("closed")
	}
	w.waitKey = false
	w.nalus = w.nalus[:0]
	for _, n := range au.NALUs {
		if h264.TypeOf(n) != h264.NALUTypeAUD {
			w.nalus = append(w.nalus, n)
		}
	}
	pkts, err := w.enc.Encode(w.nalus)
	if err != nil {
		return fmt.Errorf("packetise: %w", err)
	}
	ts := uint32(pts.Microseconds() * 9 / 100) // 90 kHz clock; wraps as RTP expects
	ntp := au.Captured
	if ntp.IsZero() {
		ntp = au.Received
	}
	for _, pkt := range pkts {
		pkt.Timestamp += ts
		if err := w.c.WritePacketRTPWithNTP(w.media, pkt, ntp); err != nil {
			var full liberrors.ErrClientWriteQueueFull
			if errors.As(err, &full) {
				w.waitKey = true
				w.log.Debug("push: rtsp write queue full; waiting for a keyframe", "target", w.addr)
				return nil
			}
			return errors.New(words(err, w.timeout))
		}
		w.queued += uint64(4 + pkt.MarshalSize()) // interleaved framing, RFC 2326 10.12
	}
	return nil
}

// drain waits while more than limit bytes handed to gortsplib have not
// gone out. It fails when nothing goes out for timeout: the server stopped
// taking data. It looks again on every write and at least every 10 ms, as
// WriteUnit and Close may wait at once and a wake-up goes to one of them.
func (w *Writer) drain(limit uint64, timeout time.Duration) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, moved := w.written.Load(), time.Now()
	for w.written.Load()+limit < w.queued {
		select {
		case <-w.wake:
		case <-tick.C:
		case <-w.done:
			return errors.New(words(w.waitErr, w.timeout))
		}
		if n := w.written.Load(); n != last {
			last, moved = n, time.Now()
		} else if time.Since(moved) > timeout {
			return fmt.Errorf("the server took nothing for %v", timeout)
		}
	}
	return nil
}

// Close ends the recording. It may be called while WriteUnit runs, and
// more than once.
func (w *Writer) Close() error {
	w.once.Do(func() {
		// The units handed over go out first (within closeGrace), so the
		// server's last picture is whole.
		// No unit is handed over from now on: one begun while the client
		// closes would go out cut short.
		w.mu.Lock()
		w.closed = true
		_ = w.drain(0, closeGrace)
		w.c.Close()
		w.mu.Unlock()
		w.wg.Wait()
	})
	return nil
}

// words says in words why the server refused or dropped the recording.
func words(err error, timeout time.Duration) string {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		switch bad.Code {
		case base.StatusUnauthorized:
			return "the server refused the user name or password (401 Unauthorized)"
		case base.StatusForbidden:
			return "the server does not allow publishing this path (403 Forbidden)"
		case base.StatusNotFound:
			return "the server has no such path (404 Not Found)"
		}
		return fmt.Sprintf("the server refused the stream (%d %s)", bad.Code, bad.Message)
	}
	if w, ok := pushurl.NetWords(err, timeout); ok {
		return w
	}
	var term liberrors.ErrClientTerminated
	if errors.As(err, &term) {
		return "closed"
	}
	return "the server ended the session"
}
