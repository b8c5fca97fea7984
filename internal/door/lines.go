package door

import (
	"log/slog"
	"sync"
	"time"
)

// linesPerSecond is how many joined/left/refused lines the door writes a
// second. A flood of connections (15,000 connect/disconnect cycles) must
// not flood the journal; the lines past this are counted, and the count
// is written as one line when lines are let through again.
const linesPerSecond = 10

// lineLimiter lets through at most n lines a second and counts the rest.
type lineLimiter struct {
	n   int
	log *slog.Logger

	mu         sync.Mutex
	window     time.Time
	used       int
	suppressed int
}

func newLineLimiter(n int, log *slog.Logger) *lineLimiter { return &lineLimiter{n: n, log: log} }

// allow reports whether a line may be written now. The first line of a
// new second is preceded by a summary of what earlier ones suppressed.
func (l *lineLimiter) allow() bool { return l.allowAt(time.Now()) }

func (l *lineLimiter) allowAt(now time.Time) bool {
	l.mu.Lock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.used = now, 0
	}
	if l.used >= l.n {
		l.suppressed++
		l.mu.Unlock()
		return false
	}
	l.used++
	n := 0
	if l.used == 1 {
		n, l.suppressed = l.suppressed, 0
	}
	l.mu.Unlock()
	l.summary(n)
	return true
}

// flush writes the count of suppressed lines, if any.
func (l *lineLimiter) flush() {
	l.mu.Lock()
	n := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	l.summary(n)
}

func (l *lineLimiter) summary(n int) {
	if n > 0 {
		l.log.Info("viewer lines suppressed", "count", n,
			"why", "more than 10 viewers joined, left or were refused in a second; /api/v1/status and /metrics count every one")
	}
}
