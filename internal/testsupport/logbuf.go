package testsupport

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects what a logger writes from many goroutines, for tests
// that check camfeed's log lines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns the lines written so far.
func (l *LogBuffer) Lines() []string { return strings.Split(strings.TrimSpace(l.String()), "\n") }
