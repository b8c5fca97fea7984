// Package pushnet dials the TCP connections of pushes.
package pushnet

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/raw"
)

// Dialer connects within Timeout and tunes the connection for a live
// stream (TCP_NOTSENT_LOWAT: the backlog of a slow uplink stays in the
// hub, where it can be skipped to a keyframe, not in the kernel). It
// remembers whether a connection was made, so that an error can tell
// "no answer" from "answered, then refused".
type Dialer struct {
	Timeout   time.Duration
	connected atomic.Bool
}

// DialContext is for the protocol libraries' DialContext hooks.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: d.Timeout}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.connected.Store(true)
	raw.TuneConn(c)
	return c, nil
}

// Connected reports whether a connection was made.
func (d *Dialer) Connected() bool { return d.connected.Load() }

// ErrSkip is returned, wrapped, by a push Writer's WriteUnit for a unit
// it did not send because the uplink cannot take the stream now (WHIP
// judges that from the server's RTCP). The push counts the unit as
// skipped and sends nothing more until the next keyframe, which the
// writer then paces at the rate the uplink delivers.
var ErrSkip = errors.New("the uplink cannot take the stream: skipping to the next keyframe")

// Options tune a push; every protocol's Dial takes them (rtmp, rtsp, srt
// and whip each name them Options).
type Options struct {
	// Timeout bounds the connection, and how long a write may wait or a
	// dead peer go unnoticed; 0 means DefaultTimeout.
	Timeout time.Duration
	// Token is WHIP's bearer token (a ?token= in the URL also works; this
	// one wins); the other protocols ignore it.
	Token string
	// Log may be nil; the caller's logger names the target.
	Log *slog.Logger
}

// DefaultTimeout is Options.Timeout when zero.
const DefaultTimeout = 5 * time.Second
