// Package app wires camfeed together: config → sources → feeds (hubs) →
// outputs, and runs it all until its context ends.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/api"
	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/feed"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/metrics"
	"github.com/camfeed/camfeed/internal/origin"
	"github.com/camfeed/camfeed/internal/pihealth"
	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/raw"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/systemd"
)

// shutdownGrace bounds how long Run waits for connections to close.
const shutdownGrace = 3 * time.Second

// App is a running camfeed.
type App struct {
	// cfg is the config the process started with. It never changes: the
	// listeners and outputs are built from it, and shutdown undoes what
	// Run started from it. A reload changes only sources and users.
	cfg     *config.Config
	log     *slog.Logger
	version string

	feeds map[string]*feed.Feed
	names []string
	// camDrops counts each feed's frames dropped by the camera, kept
	// across the sources a reload makes (written only by New).
	camDrops map[string]*source.FrameDrops

	out     outputs
	authz   atomic.Pointer[auth.Authenticator] // swapped by Reload
	viewers *limits.Viewers
	door    *door.Door // every viewer of every protocol comes in here
	mux     *route.Mux // every HTTP route, each with its access class
	origins *origin.Checker
	metrics *metrics.Metrics
	pushes  *push.Pushes // the feed sent out to other servers

	started time.Time

	// reloadMu serialises reloads and guards sourceCfg: each feed's
	// settings as its running source was built (by New or by a reload),
	// what the next reload compares against.
	reloadMu  sync.Mutex
	sourceCfg map[string]config.Feed

	// Notifier, if set, tells systemd about readiness, health and stop.
	Notifier *systemd.Notifier
	// Pi reads the Raspberry Pi's health while camfeed runs (pihealth.go);
	// New sets it up for this machine, and a test may replace it before Run.
	Pi *pihealth.Monitor
	// WedgeAfter is how long a feed may go without video before systemd's
	// watchdog is no longer petted (systemd.DefaultWedgeAfter when zero).
	WedgeAfter time.Duration

	// Ready, if set, is called once every listener is bound, with their
	// addresses by name ("http", "tcp", ...); tests use port 0.
	Ready func(addrs map[string]net.Addr)
}

// New builds the feeds and outputs from cfg. Nothing runs until Run.
func New(cfg *config.Config, version string, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, version: version, feeds: map[string]*feed.Feed{}, sourceCfg: map[string]config.Feed{},
		camDrops: map[string]*source.FrameDrops{}}
	a.metrics = metrics.New(a, version)
	a.Pi = a.newPiHealth()
	az, err := auth.New(a.authConfig(cfg))
	if err != nil {
		return nil, err
	}
	a.authz.Store(az)
	a.viewers = limits.NewViewers(cfg.Limits.Caps())
	a.door = door.New(a, a.viewers, a.metrics, a.log.With("component", "door"))
	a.metrics.CollectSessions(a, a)
	for _, name := range cfg.FeedNames() {
		a.camDrops[name] = &source.FrameDrops{}
		f, err := a.newFeed(name)
		if err != nil {
			return nil, fmt.Errorf("feed %s: %w", name, err)
		}
		a.feeds[name] = f
		a.sourceCfg[name] = cfg.Effective(name)
		a.names = append(a.names, name)
	}
	if err := a.newPushes(); err != nil {
		return nil, err
	}
	a.origins = origin.New(cfg.AllowedOrigins)
	a.mux = route.New(a.guard)
	if err := a.mount(a.mux); err != nil {
		return nil, err
	}
	(&api.Handlers{Feeds: a, Door: a.door, Version: a.version, Started: time.Now(), Extra: a.extraStatus, Pi: a.piReading}).Register(a.mux)
	a.mux.Handle("GET /metrics", route.ReadAll, a.metrics.Handler())
	if cfg.Debug {
		mountDebug(a.mux)
	}
	// Feed names cannot shadow a route: the names taken are the routes'
	// own first path segments.
	for _, name := range a.names {
		if err := a.mux.CheckFeedName(name); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *App) newFeed(name string) (*feed.Feed, error) {
	fc := a.cfg.Effective(name)
	join, err := hub.ParseJoinPolicy(fc.Join)
	if err != nil {
		return nil, err
	}
	src, err := a.newSource(a.cfg, name, fc)
	if err != nil {
		return nil, err
	}
	hc := hub.Config{MaxBytes: fc.BudgetBytes(), Window: fc.Buffer.Duration, LagBudget: fc.LagBudget, Join: join}
	h := hub.New(hc)
	return feed.New(name, src, h, feed.Options{StallTimeout: fc.StallTimeout, Parser: parserConfig()}, a.log), nil
}

// Hub implements the outputs' Feeds interface.
func (a *App) Hub(name string) (*hub.Hub, bool) {
	f, ok := a.feeds[name]
	if !ok {
		return nil, false
	}
	return f.Hub(), true
}

// Names implements the outputs' Feeds interface.
func (a *App) Names() []string { return a.names }

// Feeds implements api.Feeds.
func (a *App) Feeds() []*feed.Feed {
	out := make([]*feed.Feed, 0, len(a.names))
	for _, n := range a.names {
		out = append(out, a.feeds[n])
	}
	return out
}

// Run starts every feed and listener and serves until ctx ends; then it
// stops the listeners, closes the viewers and stops the sources, within a
// few seconds. It returns an error when a listener cannot be bound.
func (a *App) Run(parent context.Context) error {
	// The outputs and listeners run under their own context, ended only
	// once the door is closed: a viewer whose output stops at shutdown is
	// then said to leave because camfeed stopped, not for a reason of its
	// own (it was "viewer closed the connection" for unix and FIFO ones).
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	a.started = time.Now()
	var wg sync.WaitGroup
	addrs := map[string]net.Addr{}
	var closers []func()
	fail := func(err error) error {
		cancel()
		a.stopOutputs()
		for _, c := range closers {
			c()
		}
		wg.Wait()
		return err
	}

	// Listeners first: a port that is taken is an error before anything
	// starts, and every port taken is named at once with what moves it.
	// The outputs are built even with HTTP off (RTSP needs no HTTP).
	// Shutdown undoes what was started here (httpOn), whatever a reload
	// has set since.
	if err := a.checkPorts(); err != nil {
		return fail(err)
	}
	httpSrv := a.httpServer()
	httpOn := false
	if err := a.startOutputs(ctx, &wg); err != nil {
		return fail(err)
	}
	if a.out.rtsp != nil {
		addrs["rtsp"] = a.out.rtsp.Addr()
	}
	if a.cfg.HTTP != "off" {
		ln, err := net.Listen("tcp", a.cfg.HTTP)
		if err != nil {
			return fail(a.listenFailed(fmt.Errorf("http: %w", err)))
		}
		addrs["http"] = ln.Addr()
		ln = a.connLimit(ln) // before TLS: no handshake for a connection over the cap
		if a.cfg.TLS.Enabled() {
			dir, _ := auth.StateDir()
			tc, err := a.cfg.TLS.Load(dir)
			if err != nil {
				ln.Close()
				return fail(fmt.Errorf("tls: %w", err))
			}
			ln = tls.NewListener(ln, tc)
		}
		closers = append(closers, func() { httpSrv.Close() })
		httpOn = true
		wg.Go(func() {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server stopped", "err", err)
			}
		})
	}
	def := config.DefaultFeed
	if _, ok := a.feeds[def]; !ok {
		def = a.names[0]
	}
	if a.cfg.TCP != "" {
		ln, err := net.Listen("tcp", a.cfg.TCP)
		if err != nil {
			return fail(a.listenFailed(fmt.Errorf("tcp: %w", err)))
		}
		addrs["tcp"] = ln.Addr()
		ln = a.connLimit(ln)
		l := &raw.Listener{Door: a.door, Feed: def, Log: a.log, Observe: a.observe, WriteTimeout: a.cfg.Limits.WriteTimeout,
			Allow: func(r net.Addr) bool { return a.authz.Load().AllowTCP(r, def) }}
		wg.Go(func() { _ = l.Serve(ctx, ln, "tcp") })
	}
	if a.cfg.UnixDir != "" {
		for _, name := range a.names {
			ln, err := raw.ListenUnix(a.cfg.UnixDir, name)
			if err != nil {
				return fail(err)
			}
			addrs["unix:"+name] = ln.Addr()
			l := &raw.Listener{Door: a.door, Feed: name, Log: a.log, Observe: a.observe, WriteTimeout: a.cfg.Limits.WriteTimeout}
			wg.Go(func() { _ = l.Serve(ctx, ln, "unix") })
		}
	}
	if a.cfg.FIFO != "" {
		ff := &raw.FIFO{Path: a.cfg.FIFO, Door: a.door, Feed: def, Log: a.log, Observe: a.observe, WriteTimeout: a.cfg.Limits.WriteTimeout}
		wg.Go(func() {
			if err := ff.Run(ctx); err != nil {
				a.log.Error("fifo output stopped", "err", err)
			}
		})
	}

	a.startPushes(ctx, &wg)

	// Sources.
	var feedWG sync.WaitGroup
	feedCtx, stopFeeds := context.WithCancel(context.Background())
	defer stopFeeds()
	for _, name := range a.names {
		f := a.feeds[name]
		feedWG.Go(func() { _ = f.Run(feedCtx) })
	}
	a.log.Info("camfeed running", "version", a.version, "feeds", a.names, "http", addrString(addrs["http"]), "tcp", addrString(addrs["tcp"]))
	if a.Ready != nil {
		a.Ready(addrs)
	}
	if n := a.Notifier; n.Enabled() {
		wg.Go(func() { n.ReadyWhen(ctx, a.firstKeyframes(ctx), 30*time.Second) })
		wg.Go(func() { n.Run(ctx, a.systemdHealth) })
	}
	wg.Go(func() { a.Pi.Run(ctx) })

	<-parent.Done()
	a.log.Info("shutting down")
	a.door.Close()
	cancel()
	if a.Notifier.Enabled() {
		_ = a.Notifier.Stopping()
	}
	// Close the hubs first: every viewer's Next returns, so long-lived
	// stream responses end and Shutdown does not wait for them.
	for _, f := range a.feeds {
		f.Hub().Close()
	}
	if httpOn {
		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := httpSrv.Shutdown(sctx); err != nil {
			httpSrv.Close()
		}
		scancel()
	}
	a.stopOutputs()
	// Every viewer's left line before "stopped": connections taken over
	// from net/http are not waited for by Shutdown.
	vctx, vcancel := context.WithTimeout(context.Background(), shutdownGrace)
	if err := a.door.Wait(vctx); err != nil {
		a.log.Warn("exiting with viewers whose output did not end", "err", err)
	}
	vcancel()
	stopFeeds()
	a.waitFeeds(&feedWG)
	wg.Wait()
	a.door.Flush()
	a.log.Info("stopped")
	return nil
}

// feedStopGrace bounds how long shutdown waits for the sources to stop: a
// child process gets stopGrace (3 s) after SIGINT before SIGKILL, so a
// source still running after this is stuck in something no cancel reaches.
const feedStopGrace = 5 * time.Second

// waitFeeds waits for the feeds' supervisors to return, at most
// feedStopGrace. A source that is stuck past that is named in the log and
// left behind: the process is exiting, and a stuck camera must not keep it
// from doing so (systemd would kill it after TimeoutStopSec anyway).
func (a *App) waitFeeds(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(feedStopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		var stuck []string
		for _, name := range a.names {
			if st := a.feeds[name].Status(); st.State != feed.StateStopped {
				stuck = append(stuck, name+" ("+st.Source+")")
			}
		}
		a.log.Warn("sources did not stop in time; exiting without them", "after", feedStopGrace.String(), "feeds", stuck)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

func (a *App) httpServer() *http.Server {
	// Bodies are read (within read_timeout) before any route's guard, so
	// that a refusal cannot leave net/http draining a stalled body.
	srv := a.cfg.Limits.Server(limits.BodyLimit(a.cfg.Limits.MaxBodyBytes, a.cfg.Limits.ReadTimeout)(a.mux))
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		raw.TuneConn(c)
		return ctx
	}
	srv.ErrorLog = slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	return srv
}

// observe gives the metrics' per-viewer observer to the raw outputs.
func (a *App) observe(feed, output string) raw.Observer { return a.metrics.Viewer(feed, output) }

// connLimit caps a listener's connections per address, counted in the
// metrics.
func (a *App) connLimit(ln net.Listener) net.Listener {
	cl := a.cfg.Limits.Listener(ln)
	cl.OnRefuse = a.metrics.ConnRefused
	return cl
}

func (a *App) defaultFeed() string {
	if _, ok := a.feeds[config.DefaultFeed]; ok {
		return config.DefaultFeed
	}
	return a.names[0]
}

// authConfig is cfg's auth part, with refusals counted in the metrics
// (which outlive a reload's new authenticator).
func (a *App) authConfig(cfg *config.Config) auth.Config {
	ac := cfg.AuthConfig(a.log)
	ac.OnRefuse = a.metrics.AuthRefused
	return ac
}
