// Package push sends feeds out to servers built for distribution (YouTube
// or Twitch over RTMP, a MediaMTX, SRS or nginx-rtmp cluster over RTSP,
// RTMP or SRT, a WHIP endpoint), so that a camera behind a home router
// can be watched by a crowd.
//
// Each configured URL is a Target: a viewer of its feed like any other,
// entering through the door (the feed's join policy and lag budget: it
// starts at the newest keyframe with SPS/PPS, and on a slow uplink the
// hub skips it to the next keyframe, never slowing the camera or another
// viewer). A supervisor reconnects with a growing backoff and picks up at
// a keyframe. Protocols are subpackages, each with the same Dial; this
// package only knows them through the table in dialer.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/pushnet"
	"github.com/camfeed/camfeed/internal/push/pushurl"
	"github.com/camfeed/camfeed/internal/push/rtmp"
	"github.com/camfeed/camfeed/internal/push/rtsp"
	"github.com/camfeed/camfeed/internal/push/srt"
	"github.com/camfeed/camfeed/internal/push/whip"
)

// Writer is one connection to a target, as each protocol's Dial returns
// it. WriteUnit sends an access unit at pts, the push's own presentation
// time (monotonic; dts == pts). Close ends the connection; it may be
// called while WriteUnit blocks, to end it, and more than once.
type Writer interface {
	WriteUnit(au *h264.AccessUnit, pts time.Duration) error
	Close() error
}

// Options are given to every Dial.
type Options = pushnet.Options

// DialFunc connects to a target and starts a stream described by params.
type DialFunc func(ctx context.Context, target *url.URL, params hub.Params, opt Options) (Writer, error)

// dialer is the table of protocols by URL scheme.
func dialer(scheme string) DialFunc {
	switch scheme {
	case "rtmp", "rtmps":
		return func(ctx context.Context, u *url.URL, p hub.Params, o Options) (Writer, error) {
			return writer(rtmp.Dial(ctx, u, p, o))
		}
	case "rtsp", "rtsps":
		return func(ctx context.Context, u *url.URL, p hub.Params, o Options) (Writer, error) {
			return writer(rtsp.Dial(ctx, u, p, o))
		}
	case "srt":
		return func(ctx context.Context, u *url.URL, p hub.Params, o Options) (Writer, error) {
			return writer(srt.Dial(ctx, u, p, o))
		}
	case "whip+http", "whip+https":
		return func(ctx context.Context, u *url.URL, p hub.Params, o Options) (Writer, error) {
			return writer(whip.Dial(ctx, u, p, o))
		}
	}
	return nil
}

// writer turns a protocol's (*W, error) into (Writer, error) without a
// typed nil.
func writer[W Writer](w W, err error) (Writer, error) {
	if err != nil {
		return nil, err
	}
	return w, nil
}

// ErrNoProtocol is returned by Add for a scheme this build cannot push.
var ErrNoProtocol = errors.New("push: this build cannot push to that scheme")

// Target configures one push.
type Target struct {
	URL   string
	Token string // WHIP bearer token, when not in the URL's ?token=
}

// Config configures the pushes.
type Config struct {
	// Timeout bounds each connection and write (Options.Timeout).
	Timeout time.Duration
	// Backoff is the first wait after a failure, doubled each time up to
	// MaxBackoff, and back to Backoff after a minute live. 1 s and 30 s
	// when zero.
	Backoff, MaxBackoff time.Duration
	// Healthy is how long a connection must stay live for the backoff to
	// start again from Backoff; a minute when zero.
	Healthy time.Duration
}

func (c *Config) setDefaults() {
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = max(30*time.Second, c.Backoff)
	}
	if c.Healthy <= 0 {
		c.Healthy = time.Minute
	}
}

// Pushes are every configured push. Add them, then Run.
type Pushes struct {
	cfg  Config
	door *door.Door
	log  *slog.Logger

	mu      sync.Mutex
	targets []*target

	onBackoff func(time.Duration) // tests: each wait, before it starts
}

// New returns an empty set of pushes entering through d.
func New(cfg Config, d *door.Door, log *slog.Logger) *Pushes {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pushes{cfg: cfg, door: d, log: log}
}

// Add configures a push of feed to t before Run. The URL is checked again
// (the config did already), and its scheme must have a protocol here.
func (p *Pushes) Add(feed string, t Target) error {
	u, err := pushurl.Parse(t.URL)
	if err != nil {
		return err
	}
	dial := dialer(u.Scheme)
	if dial == nil {
		return fmt.Errorf("%w: %s", ErrNoProtocol, pushurl.Addr(u))
	}
	token := t.Token
	if q := u.Query(); q.Has("token") && (u.Scheme == "whip+http" || u.Scheme == "whip+https") {
		if token == "" {
			token = q.Get("token")
		}
		q.Del("token")
		u.RawQuery = q.Encode()
	}
	p.add(feed, u, token, dial)
	return nil
}

func (p *Pushes) add(feed string, u *url.URL, token string, dial DialFunc) {
	tg := newTarget(p, feed, u, token, dial)
	p.mu.Lock()
	p.targets = append(p.targets, tg)
	p.mu.Unlock()
}

// Len is the number of pushes configured.
func (p *Pushes) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.targets)
}

// Run pushes until ctx ends, then closes every connection and returns
// when every goroutine has.
func (p *Pushes) Run(ctx context.Context) {
	p.mu.Lock()
	ts := append([]*target(nil), p.targets...)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Go(func() { t.run(ctx) })
	}
	wg.Wait()
}

// Status returns the status of feed's pushes, in the order configured.
func (p *Pushes) Status(feed string) []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Status
	for _, t := range p.targets {
		if t.feed == feed {
			out = append(out, t.status())
		}
	}
	return out
}

// All returns the status of every push, in the order configured.
func (p *Pushes) All() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Status, 0, len(p.targets))
	for _, t := range p.targets {
		out = append(out, t.status())
	}
	return out
}
