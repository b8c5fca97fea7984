package push

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// The push's clock is monotonic whatever the source's clock does, keeps
// the gaps of skips, and spreads a burst a millisecond apart.
func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	steps := []struct {
		captured time.Time
		want     time.Duration
	}{
		{t0, 0},
		{t0.Add(33 * ms), 33 * ms},
		{t0.Add(33*ms + 200*time.Microsecond), 34 * ms}, // burst
		{t0.Add(2 * time.Second), 2 * time.Second},      // a skip keeps its gap
		{t0.Add(1990 * ms), 2*time.Second + ms},         // jitter back
		{t0.Add(-time.Hour), 2*time.Second + 2*ms},      // the source's clock stepped back
		{t0.Add(-time.Hour + 33*ms), 2*time.Second + 35*ms},
	}
	var c clock
	for i, s := range steps {
		if got := c.pts(&h264.AccessUnit{Captured: s.captured, Received: time.Now()}); got != s.want {
			t.Errorf("step %d: pts %v, want %v", i, got, s.want)
		}
	}
	// Without a capture time, the arrival time is the clock.
	var r clock
	now := time.Now()
	r.pts(&h264.AccessUnit{Received: now})
	if got := r.pts(&h264.AccessUnit{Received: now.Add(40 * ms)}); got != 40*ms {
		t.Errorf("received clock: %v", got)
	}
}
