// Package feed runs one feed: it supervises the source (restart with
// backoff, stall watchdog), parses what it makes into access units, and
// publishes them to the feed's hub.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
)

// Errors a restart is logged with.
var (
	// ErrReplaced ends an attempt whose source a config reload replaced.
	ErrReplaced = errors.New("source replaced by a config reload")
	ErrStalled  = errors.New("no video")
	ErrNoStart  = errors.New("no video after start")
)

// State is where the supervisor is.
type State string

// States.
const (
	StateStarting State = "starting" // source started, no access unit yet
	StateWaiting  State = "waiting"  // a passive source waits for its publisher
	StateRunning  State = "running"  // access units flowing
	StateBackoff  State = "backoff"  // waiting out the backoff after a failure (the metrics' word too)
	StateStopped  State = "stopped"
)

// Options tune the supervisor. Zero values take the defaults.
type Options struct {
	StallTimeout time.Duration // default 5 s: no access unit this long restarts the source
	StartTimeout time.Duration // default 15 s: an active source must deliver within this
	MinBackoff   time.Duration // default 500 ms, doubling
	MaxBackoff   time.Duration // default 30 s
	HealthyAfter time.Duration // default 1 min: a run this long resets the backoff
	Parser       h264.ParserConfig
}

func (o *Options) setDefaults() {
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 15 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.HealthyAfter <= 0 {
		o.HealthyAfter = time.Minute
	}
}

// passive sources wait for someone else to start sending (FIFO, a TCP or
// RTSP publisher, stdin): no start timeout for them.
type passive interface{ Passive() bool }

// Feed is one supervised source feeding one hub.
type Feed struct {
	name string
	src  source.Source
	hub  *hub.Hub
	opts Options
	log  *slog.Logger

	lastAU atomic.Int64 // UnixNano of the newest access unit

	srcMu  sync.Mutex
	cancel context.CancelCauseFunc // the running attempt's, for Replace

	// replaced wakes a supervisor waiting out its backoff: a reload that
	// fixes a failing source is tried at once, not up to MaxBackoff later.
	replaced chan struct{}

	mu          sync.Mutex
	state       State
	stateSince  time.Time
	restarts    int
	lastErr     string
	lastErrAt   time.Time
	parserStats h264.Stats
	statsBase   h264.Stats // totals of earlier attempts
}

// New returns a feed; call Run to start it.
func New(name string, src source.Source, h *hub.Hub, opts Options, log *slog.Logger) *Feed {
	opts.setDefaults()
	return &Feed{
		name: name, src: src, hub: h, opts: opts, log: log.With("feed", name), state: StateStopped, stateSince: time.Now(),
		replaced: make(chan struct{}, 1),
	}
}

// Name returns the feed's name.
func (f *Feed) Name() string { return f.name }

// Hub returns the feed's hub.
func (f *Feed) Hub() *hub.Hub { return f.hub }

// Source returns the feed's source.
func (f *Feed) Source() source.Source {
	f.srcMu.Lock()
	defer f.srcMu.Unlock()
	return f.src
}

// Replace swaps the feed's source (a config reload) and stops the running
// attempt, or ends the wait of a feed in backoff; either way the next
// attempt starts at once with the new source, with the backoff reset. The
// hub and its viewers stay: they continue at the new source's first
// keyframe.
func (f *Feed) Replace(src source.Source) {
	f.srcMu.Lock()
	f.src = src
	cancel := f.cancel
	if cancel == nil { // between attempts: wake the backoff (under srcMu, see attempt)
		select {
		case f.replaced <- struct{}{}:
		default: // already woken
		}
	}
	f.srcMu.Unlock()
	if cancel != nil {
		cancel(ErrReplaced)
	}
}

func (f *Feed) setState(s State) {
	f.mu.Lock()
	if f.state != s {
		f.state, f.stateSince = s, time.Now()
	}
	f.mu.Unlock()
}

// Run supervises the source until ctx ends. It always returns nil after
// ctx ends; the hub stays open (viewers stay connected across restarts).
func (f *Feed) Run(ctx context.Context) error {
	backoff := f.opts.MinBackoff
	var lastMsg string
	var lastLog time.Time
	for {
		start := time.Now()
		gotAU, err := f.attempt(ctx)
		if ctx.Err() != nil {
			f.setState(StateStopped)
			return nil
		}
		if errors.Is(err, ErrReplaced) {
			f.log.Info("source replaced by a config reload", "source", f.Source().String())
			backoff = f.opts.MinBackoff
			continue
		}
		if gotAU && time.Since(start) >= f.opts.HealthyAfter {
			backoff = f.opts.MinBackoff
		}
		msg := err.Error()
		f.mu.Lock()
		f.restarts++
		f.lastErr, f.lastErrAt = msg, time.Now()
		f.mu.Unlock()
		// The same failure over and over is logged once a minute, not at
		// every retry.
		if msg != lastMsg || time.Since(lastLog) > time.Minute {
			f.log.Warn("source stopped; retrying", "source", f.Source().String(), "reason", msg, "retry_in", backoff.String())
			lastMsg, lastLog = msg, time.Now()
		} else {
			f.log.Debug("source stopped again", "reason", msg)
		}
		f.setState(StateBackoff)
		wait := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			wait.Stop()
			f.setState(StateStopped)
			return nil
		case <-f.replaced:
			wait.Stop()
			f.log.Info("source replaced by a config reload; starting it now", "source", f.Source().String())
			backoff = f.opts.MinBackoff
			continue
		case <-wait.C:
		}
		backoff = min(backoff*2, f.opts.MaxBackoff)
	}
}

// attempt runs the source once, under the stall watchdog. It reports
// whether any access unit came, and why the source stopped.
func (f *Feed) attempt(ctx context.Context) (bool, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f.srcMu.Lock()
	src := f.src
	f.cancel = cancel
	// This attempt runs the newest source: a wake-up from a Replace made
	// just before must not cut its backoff short, should it fail.
	select {
	case <-f.replaced:
	default:
	}
	f.srcMu.Unlock()
	defer func() {
		f.srcMu.Lock()
		f.cancel = nil
		f.srcMu.Unlock()
	}()
	p, isPassive := src.(passive)
	isPassive = isPassive && p.Passive()
	if isPassive {
		f.setState(StateWaiting)
	} else {
		f.setState(StateStarting)
	}
	s := &sink{f: f, parser: h264.NewParser(f.opts.Parser), flush: true}
	s.emitFn = s.emit
	started := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { f.watch(actx, cancel, s, started, isPassive) })
	err := src.Run(actx, s)
	cancel(nil)
	wg.Wait()
	f.mu.Lock()
	f.statsBase = addStats(f.statsBase, s.stats())
	f.parserStats = h264.Stats{}
	f.mu.Unlock()
	if cause := context.Cause(actx); cause != nil && !errors.Is(cause, context.Canceled) && ctx.Err() == nil {
		err = cause
	}
	if err == nil {
		err = errors.New("source stopped without an error")
	}
	return s.gotAU.Load(), err
}

// watch is the stall watchdog, and logs stream damage once a second.
func (f *Feed) watch(ctx context.Context, cancel context.CancelCauseFunc, s *sink, started time.Time, isPassive bool) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var logged h264.Stats
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if s.gotAU.Load() {
				last := time.Unix(0, f.lastAU.Load())
				if d := now.Sub(last); d > f.opts.StallTimeout {
					cancel(fmt.Errorf("%w for %s: the source is stalled", ErrStalled, d.Round(time.Second)))
					return
				}
			} else if !isPassive && now.Sub(started) > f.opts.StartTimeout {
				cancel(fmt.Errorf("%w: nothing decodable within %s of starting the source", ErrNoStart, f.opts.StartTimeout))
				return
			}
			if now.Sub(lastLog) >= time.Second {
				st := s.stats()
				if d := damage(logged, st); d != "" {
					f.log.Warn("damaged input skipped; viewers resume at the next keyframe", "damage", d)
					logged, lastLog = st, now
				}
			}
		}
	}
}

func damage(a, b h264.Stats) string {
	var out string
	add := func(n uint64, what string) {
		if n > 0 {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%d %s", n, what)
		}
	}
	add(b.GarbageBytes-a.GarbageBytes, "garbage bytes")
	add(b.BadNALUs-a.BadNALUs, "bad NAL units")
	add(b.Oversized-a.Oversized, "oversized NAL units")
	add(b.Dropped-a.Dropped, "undecodable frames dropped")
	return out
}

func addStats(a, b h264.Stats) h264.Stats {
	a.Bytes += b.Bytes
	a.NALUs += b.NALUs
	a.AccessUnits += b.AccessUnits
	a.Keyframes += b.Keyframes
	a.GarbageBytes += b.GarbageBytes
	a.BadNALUs += b.BadNALUs
	a.Oversized += b.Oversized
	a.Dropped += b.Dropped
	a.Fragments += b.Fragments
	return a
}

// Status describes the feed for the status API and health checks.
type Status struct {
	Name       string
	Source     string
	State      State
	StateSince time.Time
	Restarts   int
	LastError  string
	LastErrAt  time.Time
	LastUnit   time.Time
	Parser     h264.Stats
}

// Status returns the feed's state.
func (f *Feed) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{
		Name: f.name, Source: f.Source().String(), State: f.state, StateSince: f.stateSince,
		Restarts: f.restarts, LastError: f.lastErr, LastErrAt: f.lastErrAt,
		Parser: addStats(f.statsBase, f.parserStats),
	}
	if n := f.lastAU.Load(); n != 0 {
		st.LastUnit = time.Unix(0, n)
	}
	return st
}
