package rtsp

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	lg := &testLog{}
	l := newLimiter(slog.New(slog.NewTextHandler(lg, nil)), slog.LevelWarn, "refused")
	for i := range 5 {
		l.note("n", i)
	}
	if got := lg.String(); strings.Count(got, "refused") != 1 || !strings.Contains(got, "count=1 n=0") {
		t.Fatalf("first event: %q", got)
	}
	time.Sleep(1200 * time.Millisecond)
	if got := lg.String(); strings.Count(got, "refused") != 2 || !strings.Contains(got, "count=4 n=4") {
		t.Fatalf("after a second, the summary of the rest: %q", got)
	}
	l.note("n", 5) // due a second after the summary
	l.close()      // drops it, and waits for its timer
	l.note("n", 6)
	if got := lg.String(); strings.Count(got, "refused") != 2 {
		t.Fatalf("logged after close: %q", got)
	}
}
