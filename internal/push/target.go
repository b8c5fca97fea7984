package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/logx"
	"github.com/camfeed/camfeed/internal/push/pushnet"
	"github.com/camfeed/camfeed/internal/push/pushurl"
)

// States of a target, as the status and metrics name them.
const (
	StateConnecting = "connecting" // waiting for a keyframe, or dialling
	StateLive       = "live"
	StateBackoff    = "backoff" // waiting before the next attempt
	StateStopped    = "stopped"
)

// States lists every state, for metrics that report each.
var States = []string{StateConnecting, StateLive, StateBackoff, StateStopped}

// Status describes one push, for /api/v1/status and the metrics.
type Status struct {
	Feed string `json:"feed"`
	// Target is the URL with its secrets masked (xxxx).
	Target string    `json:"target"`
	State  string    `json:"state"`
	Since  time.Time `json:"since"`
	// Bytes and Frames count the access units sent, over every
	// connection of the push.
	Bytes  uint64 `json:"bytes"`
	Frames uint64 `json:"frames"`
	// FramesSkipped counts the units the uplink was too slow for (the
	// hub moved the push on to a keyframe, or its writer judged the
	// uplink short: pushnet.ErrSkip).
	FramesSkipped uint64 `json:"frames_skipped"`
	// Lag is how old the last unit sent was when its write returned.
	Lag         float64    `json:"lag_seconds"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	Reconnects  uint64     `json:"reconnects"`
}

// errSkipped marks a unit the push did not give its writer, on the way
// to a keyframe after pushnet.ErrSkip.
var errSkipped = errors.New("skipped")

// errParamsChanged ends a connection whose stream description is stale.
var errParamsChanged = errors.New("the camera's SPS/PPS changed: reconnecting with the new ones")

// How often a target may log: a failing target logs its first lines,
// then one summary per interval.
const (
	linesPer   = 5
	linesEvery = time.Minute
	skipEvery  = 10 * time.Second // one skip summary line at most this often
	closeGrace = time.Second      // at a stop, the unit being written may finish
)

// target is one push: a supervisor around connections.
type target struct {
	p     *Pushes
	feed  string
	u     *url.URL
	name  string // masked URL
	token string
	dial  DialFunc
	lines *logx.RateLog
	clock clock

	mu sync.Mutex
	st Status
}

func newTarget(p *Pushes, feed string, u *url.URL, token string, dial DialFunc) *target {
	name := pushurl.Mask(u)
	return &target{
		p: p, feed: feed, u: u, name: name, token: token, dial: dial,
		lines: logx.NewRateLog(p.log, linesPer, linesEvery),
		st:    Status{Feed: feed, Target: name, State: StateConnecting, Since: time.Now()},
	}
}

func (t *target) status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

func (t *target) setState(state string) {
	t.mu.Lock()
	if t.st.State != state {
		t.st.State, t.st.Since = state, time.Now()
	}
	t.mu.Unlock()
}

func (t *target) logf(level slog.Level, words string, attrs ...any) {
	t.lines.Log(context.Background(), level, "push "+t.name+": "+words, append([]any{"feed", t.feed}, attrs...)...)
}

// run supervises the push until ctx ends: connect, send, and after a
// failure wait (1 s doubling to 30 s, from 1 s again after a healthy
// minute) and connect again, picking up at a keyframe.
func (t *target) run(ctx context.Context) {
	cfg := t.p.cfg
	backoff := cfg.Backoff
	for first := true; ; first = false {
		if !first {
			t.mu.Lock()
			t.st.Reconnects++
			t.mu.Unlock()
		}
		t.setState(StateConnecting)
		live, err := t.connection(ctx)
		if ctx.Err() != nil {
			break
		}
		if live >= cfg.Healthy {
			backoff = cfg.Backoff
		}
		words := t.words(err)
		now := time.Now()
		t.mu.Lock()
		t.st.LastError, t.st.LastErrorAt = words, &now
		t.mu.Unlock()
		if errors.Is(err, errParamsChanged) && live >= cfg.Backoff {
			// At once, unless the parameters flap faster than the backoff.
			t.logf(slog.LevelInfo, words)
			continue
		}
		t.logf(slog.LevelWarn, words, "retry_in", backoff.String())
		if t.p.onBackoff != nil {
			t.p.onBackoff(backoff)
		}
		t.setState(StateBackoff)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
	t.setState(StateStopped)
	t.lines.Flush()
}

// words is err as the log and status say it: the protocol packages
// prefix the target's scheme://host:port (WHIP its path too, in its own
// masking), which the line already names.
func (t *target) words(err error) string {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, pushurl.Addr(t.u))
	if !ok {
		return msg
	}
	if strings.HasPrefix(rest, "/") {
		if path, after, ok := strings.Cut(rest, ": "); ok && !strings.ContainsAny(path, " \t") {
			return after
		}
	}
	if after, ok := strings.CutPrefix(rest, ": "); ok {
		return after
	}
	return msg
}

// connection is one attempt: dial with the feed's parameter sets, enter
// the door, send from its first keyframe until something fails. It
// returns how long the push was live. Before the feed's first keyframe
// there is nothing to describe the stream with: then the push enters
// first and dials with the keyframe it waited for.
func (t *target) connection(ctx context.Context) (live time.Duration, err error) {
	h, ok := t.p.door.Feed(t.feed)
	if !ok {
		return 0, fmt.Errorf("no feed %q", t.feed)
	}
	var w Writer
	params := h.Params()
	if params.Gen > 0 {
		if w, err = t.dial(ctx, t.u, params, t.options()); err != nil {
			return 0, err
		}
	}
	closeW := func() {
		if w != nil {
			_ = w.Close()
		}
	}
	s, err := t.p.door.Enter(door.Who{Feed: t.feed, Protocol: door.Push, Remote: t.u.Host})
	if err != nil {
		closeW()
		return 0, fmt.Errorf("the feed refused the push: %w", err)
	}
	defer func() {
		reason := "camfeed is stopping"
		if ctx.Err() == nil && err != nil {
			reason = t.words(err)
		}
		s.Leave(reason)
	}()
	f, err := s.Sub.Next(ctx)
	if err != nil {
		closeW()
		return 0, feedErr(err)
	}
	if w == nil {
		params = paramsOf(f.AccessUnit)
		if w, err = t.dial(ctx, t.u, params, t.options()); err != nil {
			return 0, err
		}
	} else if !sameParams(f.AccessUnit, params) {
		closeW()
		return 0, errParamsChanged
	}
	defer w.Close()
	// At a stop, the unit being written may finish (the server's last
	// picture is then whole) for closeGrace; then Close ends a write
	// blocked on a stuck uplink.
	loopDone, closed := make(chan struct{}), make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		select {
		case <-loopDone:
		case <-time.After(closeGrace):
		}
		_ = w.Close()
	})
	defer func() {
		close(loopDone)
		if !stop() {
			<-closed
		}
	}()
	start := time.Now()
	defer func() { live = time.Since(start) }()
	t.setState(StateLive)
	t.logf(slog.LevelInfo, "live")
	lastSeq, flowing := f.Seq, false
	var skipped uint64
	lastSkipLine := time.Now()
	// toKey: the writer said the uplink cannot take the stream
	// (pushnet.ErrSkip): nothing more goes until the next keyframe.
	toKey := false
	for {
		toKey = toKey && !f.Keyframe
		err := errSkipped
		if !toKey {
			err = t.send(w, f.AccessUnit)
		}
		switch {
		case errors.Is(err, pushnet.ErrSkip) || err == errSkipped:
			toKey = true
			skipped++
			t.mu.Lock()
			t.st.FramesSkipped++
			t.mu.Unlock()
		case err != nil:
			return 0, err
		}
		if f, err = s.Sub.Next(ctx); err != nil {
			return 0, feedErr(err)
		}
		if f.Keyframe && !sameParams(f.AccessUnit, params) {
			return 0, errParamsChanged
		}
		// The jumps of a connection's start (JoinInstant's cached keyframe
		// to the next one, or past what came during the dial) are the
		// join, not a slow uplink: gaps count once units have followed on.
		switch {
		case f.Seq == lastSeq+1:
			flowing = true
		case f.Seq > lastSeq+1 && flowing:
			n := f.Seq - lastSeq - 1
			skipped += n
			t.mu.Lock()
			t.st.FramesSkipped += n
			t.mu.Unlock()
		}
		lastSeq = f.Seq
		if skipped > 0 && time.Since(lastSkipLine) >= skipEvery {
			t.logf(slog.LevelWarn, fmt.Sprintf("uplink too slow: skipped %d frames to keyframes in the last %s", skipped, time.Since(lastSkipLine).Round(time.Second)))
			skipped, lastSkipLine = 0, time.Now()
		}
	}
}

func (t *target) options() Options {
	return Options{Timeout: t.p.cfg.Timeout, Token: t.token, Log: t.p.log}
}

// send writes one unit and counts it.
func (t *target) send(w Writer, au *h264.AccessUnit) error {
	if err := w.WriteUnit(au, t.clock.pts(au)); err != nil {
		return err
	}
	lag := time.Since(au.Received)
	t.mu.Lock()
	t.st.Bytes += uint64(au.Size())
	t.st.Frames++
	t.st.Lag = lag.Seconds()
	t.mu.Unlock()
	return nil
}

func feedErr(err error) error {
	if errors.Is(err, hub.ErrClosed) {
		return errors.New("the feed stopped")
	}
	return err
}

// paramsOf describes the stream that starts at keyframe au, from the SPS
// and PPS the parser guarantees it carries.
func paramsOf(au *h264.AccessUnit) hub.Params {
	var p hub.Params
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case h264.NALUTypeSPS:
			p.SPS = n
		case h264.NALUTypePPS:
			p.PPS = n
		}
	}
	p.Info, _ = h264.ParseSPS(p.SPS)
	return p
}

// sameParams reports whether keyframe au carries the SPS and PPS of p (a
// keyframe without them is taken to keep them).
func sameParams(au *h264.AccessUnit, p hub.Params) bool {
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case h264.NALUTypeSPS:
			if !bytes.Equal(n, p.SPS) {
				return false
			}
		case h264.NALUTypePPS:
			if !bytes.Equal(n, p.PPS) {
				return false
			}
		}
	}
	return true
}
