package logx

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

func newLog(buf *testsupport.LogBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// TestHostileRateLog: thousands of viewers coming and going from many
// goroutines give N lines and one summary per message, not thousands.
func TestHostileRateLog(t *testing.T) {
	var buf testsupport.LogBuffer
	l := NewRateLog(newLog(&buf), 3, time.Hour)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 500 {
				l.Log(context.Background(), slog.LevelInfo, "http viewer joined", "remote", "192.0.2.1:1")
				l.Log(context.Background(), slog.LevelInfo, "http viewer left", "remote", "192.0.2.1:1")
			}
		})
	}
	wg.Wait()
	l.Log(context.Background(), slog.LevelDebug, "below the level", "x", 1) // neither written nor counted
	l.Flush()
	got := buf.Lines()
	if len(got) != 5 {
		t.Fatalf("%d lines, want 3 and two summaries:\n%s", len(got), strings.Join(got, "\n"))
	}
	var joined, left int
	for _, s := range got[:3] {
		if strings.Contains(s, "more=") {
			t.Errorf("a summary among the first lines: %s", s)
		}
		if strings.Contains(s, "joined") {
			joined++
		} else {
			left++
		}
	}
	wantJ := `level=INFO msg="http viewer joined" more=` + itoa(5000-joined) + " in_last=1h0m0s"
	wantL := `level=INFO msg="http viewer left" more=` + itoa(5000-left) + " in_last=1h0m0s"
	if got[3] != wantJ || got[4] != wantL {
		t.Errorf("summaries\n%s\n%s\nwant\n%s\n%s", got[3], got[4], wantJ, wantL)
	}
	l.Flush() // nothing held: nothing written
	if n := len(buf.Lines()); n != 5 {
		t.Errorf("an empty flush wrote %d lines", n-5)
	}
}

// TestRateLogInterval: the summary comes by itself at the end of the
// interval, and the next interval passes lines again.
func TestRateLogInterval(t *testing.T) {
	var buf testsupport.LogBuffer
	l := NewRateLog(newLog(&buf), 1, 50*time.Millisecond)
	ctx := context.Background()
	l.Log(ctx, slog.LevelInfo, "left", "n", 1)
	l.Log(ctx, slog.LevelInfo, "left", "n", 2)
	l.Log(ctx, slog.LevelWarn, "left", "n", 3)
	deadline := time.Now().Add(10 * time.Second)
	for len(buf.Lines()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no summary after the interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(60 * time.Millisecond)
	l.Log(ctx, slog.LevelInfo, "left", "n", 4)
	want := []string{`level=INFO msg=left n=1`, `level=WARN msg=left more=2 in_last=50ms`, `level=INFO msg=left n=4`}
	if got := buf.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
