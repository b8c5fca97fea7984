// Package rtmp pushes a feed to an RTMP or RTMPS server (YouTube, Twitch,
// nginx-rtmp, SRS, MediaMTX) with gortmplib: one publish per Dial, H.264
// only, timestamps given by the caller.
//
// The connection is never read after the publish is accepted: gortmplib's
// reader answers pings by writing, which may not run beside our writes.
// Publishers keep sending, which is what servers (nginx-rtmp's ping
// included) look for; a server that closes the connection shows as a
// failed write.
package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/pushnet"
	"github.com/camfeed/camfeed/internal/push/pushurl"
)

// Options tune a push (pushnet.Options, the same for every protocol).
type Options = pushnet.Options

// DefaultTimeout is Options.Timeout when zero.
const DefaultTimeout = pushnet.DefaultTimeout

// Writer is one accepted publish.
type Writer struct {
	c       *gortmplib.Client
	w       *gortmplib.Writer
	track   *gortmplib.Track
	timeout time.Duration
	nalus   [][]byte
	once    sync.Once
}

// Dial connects to target (rtmp://host[:port]/app/streamkey, or rtmps://)
// and publishes a stream with params' SPS and PPS. Its errors say what
// went wrong in words and name the target by scheme://host:port only.
func Dial(ctx context.Context, target *url.URL, params hub.Params, opt Options) (*Writer, error) {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	app, key := pushurl.SplitRTMP(target)
	if key == "" {
		return nil, fmt.Errorf("%s: no stream key in the URL (rtmp://host/app/streamkey)", pushurl.Addr(target))
	}
	// gortmplib takes the application from the path and the stream key
	// from the fragment.
	u := &url.URL{Scheme: target.Scheme, User: target.User, Host: target.Host, Path: "/" + app, Fragment: key}
	d := &pushnet.Dialer{Timeout: timeout}
	c := &gortmplib.Client{
		URL: u, Publish: true,
		TLSConfig:   &tls.Config{MinVersion: tls.VersionTLS12},
		DialContext: d.DialContext,
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Initialize(dctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %s", pushurl.Addr(target), dialError(err, d.Connected(), dctx.Err() != nil, timeout))
	}
	track := &gortmplib.Track{Codec: &codecs.H264{SPS: params.SPS, PPS: params.PPS}}
	w := &Writer{c: c, track: track, timeout: timeout, w: &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}}
	_ = c.NetConn().SetWriteDeadline(time.Now().Add(timeout))
	if err := w.w.Initialize(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %s", pushurl.Addr(target), writeError(err, timeout))
	}
	return w, nil
}

// WriteUnit sends one access unit at pts (dts is the same: camfeed's
// streams have no B-frames). The access unit delimiter is left out; RTMP
// frames pictures itself.
func (w *Writer) WriteUnit(au *h264.AccessUnit, pts time.Duration) error {
	w.nalus = w.nalus[:0]
	for _, n := range au.NALUs {
		if h264.TypeOf(n) != h264.NALUTypeAUD {
			w.nalus = append(w.nalus, n)
		}
	}
	_ = w.c.NetConn().SetWriteDeadline(time.Now().Add(w.timeout))
	if err := w.w.WriteH264(w.track, pts, pts, w.nalus); err != nil {
		return errors.New(writeError(err, w.timeout))
	}
	return nil
}

// Close ends the publish. It may be called while WriteUnit blocks, to
// end it, and more than once.
func (w *Writer) Close() error {
	w.once.Do(w.c.Close)
	return nil
}

// dialError says in words why a connection or publish failed.
func dialError(err error, connected, timedOut bool, timeout time.Duration) string {
	words, ok := pushurl.NetWords(err, timeout)
	switch {
	case !connected && timedOut:
		return "no answer in " + pushurl.Seconds(timeout)
	case connected && (timedOut || errors.Is(err, os.ErrDeadlineExceeded)):
		return "the server accepted the connection but not the stream in " + pushurl.Seconds(timeout)
	case ok && words == "the server closed the connection":
		// nginx-rtmp, YouTube and Twitch hang up on a bad key.
		return words + ": stream key rejected?"
	case ok:
		return words
	case connected:
		// gortmplib's own text may quote the server's answer, which can
		// echo the stream key.
		return "the server refused the stream: stream key rejected?"
	}
	return "cannot connect"
}

// writeError says in words why a write failed.
func writeError(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "the server took more than " + pushurl.Seconds(timeout) + " to take one picture: uplink too slow, or server stuck"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	if words, ok := pushurl.NetWords(err, timeout); ok {
		return words
	}
	return "write failed"
}
