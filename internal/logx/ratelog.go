// Package logx holds small helpers around log/slog that several
// packages share.
package logx

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// RateLog passes at most N lines per interval to a logger and sums up
// the rest. It is for lines a client can make camfeed write at will, one
// per connection: "viewer joined", "viewer left", "refused". Without it,
// 15,000 connect-disconnect cycles wrote 15,000 lines (2.8 MB) to the
// journal of a Pi's SD card.
//
// After an interval in which lines were held back, one summary line per
// held message says how many, with the message's own text and the highest
// level held:
//
//	level=INFO msg="http viewer left" more=1234 in_last=10s
//
// The summary is written by a timer at the end of the interval (no
// goroutine waits in between), or by Flush. Safe for concurrent use.
type RateLog struct {
	log   *slog.Logger
	n     int
	every time.Duration

	mu     sync.Mutex
	start  time.Time // of the current interval
	passed int
	held   map[string]held
	timer  *time.Timer
}

type held struct {
	n     int
	level slog.Level
}

// NewRateLog returns a RateLog writing to log at most n lines every
// interval (n < 1 is taken as 1).
func NewRateLog(log *slog.Logger, n int, every time.Duration) *RateLog {
	return &RateLog{log: log, n: max(n, 1), every: every, held: map[string]held{}}
}

// Log writes the line, or counts it toward the interval's summary. Lines
// below the logger's level are dropped without being counted.
func (l *RateLog) Log(ctx context.Context, level slog.Level, msg string, attrs ...any) {
	if !l.log.Enabled(ctx, level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.start) >= l.every {
		l.start, l.passed = now, 0
	}
	if l.passed < l.n {
		l.passed++
		l.mu.Unlock()
		l.log.Log(ctx, level, msg, attrs...)
		return
	}
	h := l.held[msg]
	h.n++
	if h.n == 1 || level > h.level {
		h.level = level
	}
	l.held[msg] = h
	if l.timer == nil {
		l.timer = time.AfterFunc(l.start.Add(l.every).Sub(now), l.Flush)
	}
	l.mu.Unlock()
}

// Flush writes the summary of the lines held back so far, if any. The
// owner calls it on shutdown, so that no count is lost.
func (l *RateLog) Flush() {
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	h := l.held
	l.held = map[string]held{}
	l.mu.Unlock()
	msgs := make([]string, 0, len(h))
	for m := range h {
		msgs = append(msgs, m)
	}
	slices.Sort(msgs)
	for _, m := range msgs {
		l.log.Log(context.Background(), h[m].level, m, "more", h[m].n, "in_last", l.every.String())
	}
}
