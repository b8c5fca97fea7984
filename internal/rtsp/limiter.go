package rtsp

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// limiter logs one kind of event at most once a second, as MediaMTX's
// counterdumper does, so that a flood of bad requests or slow viewers
// cannot flood the log: the first event is logged at once, the ones that
// follow within the second are counted and summed up in one line when the
// second is over, with the details of the newest.
type limiter struct {
	log   *slog.Logger
	level slog.Level
	msg   string

	mu     sync.Mutex
	last   time.Time
	n      int   // events not logged yet
	attrs  []any // of the newest of them
	timer  *time.Timer
	wg     sync.WaitGroup
	closed bool
}

func newLimiter(log *slog.Logger, level slog.Level, msg string) *limiter {
	return &limiter{log: log, level: level, msg: msg}
}

func (l *limiter) note(attrs ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.n++
	l.attrs = attrs
	now := time.Now()
	if l.timer != nil {
		return // a summary is due
	}
	if wait := l.last.Add(time.Second).Sub(now); wait > 0 {
		l.wg.Add(1)
		l.timer = time.AfterFunc(wait, l.flush)
		return
	}
	l.emitLocked(now)
}

func (l *limiter) flush() {
	defer l.wg.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if !l.closed && l.n > 0 {
		l.emitLocked(time.Now())
	}
}

func (l *limiter) emitLocked(now time.Time) {
	l.log.Log(context.Background(), l.level, l.msg, append([]any{"count", l.n}, l.attrs...)...)
	l.n, l.last = 0, now
}

// close drops what is not logged yet and waits for a pending summary.
func (l *limiter) close() {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil && l.timer.Stop() {
		l.timer = nil
		l.wg.Done()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
