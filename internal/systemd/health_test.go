package systemd

import (
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	now := time.Date(2025, 5, 3, 10, 0, 0, 0, time.UTC)
	started := now.Add(-time.Hour)
	live := FeedHealth{Name: "cam", FPS: 30, Bitrate: 4.1e6, Viewers: 2, LastUnit: now.Add(-30 * time.Millisecond), Started: started}
	tests := []struct {
		name    string
		feeds   []FeedHealth
		ok      bool
		summary string
	}{
		{"live", []FeedHealth{live}, true, "cam: 30.0 fps, 4.1 Mbit/s, 2 viewers"},
		{"one viewer", []FeedHealth{{Name: "cam", FPS: 25, Bitrate: 1e6, Viewers: 1, LastUnit: now, Started: started}}, true, "cam: 25.0 fps, 1.0 Mbit/s, 1 viewer"},
		{"briefly silent", []FeedHealth{live, {Name: "door", LastUnit: now.Add(-12 * time.Second), Started: started}}, true,
			"cam: 30.0 fps, 4.1 Mbit/s, 2 viewers; door: no video for 12s"},
		{"stalled past the limit", []FeedHealth{live, {Name: "door", LastUnit: now.Add(-72 * time.Second), Started: started}}, false,
			"cam: 30.0 fps, 4.1 Mbit/s, 2 viewers; door: no video for 1m12s"},
		{"never produced, just started", []FeedHealth{{Name: "cam", Started: now.Add(-5 * time.Second)}}, true, "cam: no video for 5s"},
		{"never produced, for too long", []FeedHealth{{Name: "cam", Started: now.Add(-2 * time.Minute)}}, false, "cam: no video for 2m0s"},
		{"reloaded feed gets a fresh start", []FeedHealth{{Name: "cam", LastUnit: now.Add(-2 * time.Minute), Started: now.Add(-3 * time.Second)}}, true, "cam: no video for 3s"},
		{"publisher absent is fine", []FeedHealth{{Name: "push", Passive: true, Started: now.Add(-time.Hour)}}, true, "push: waiting for a publisher"},
		{"no feeds", nil, true, "no feeds"},
	}
	for _, tt := range tests {
		ok, s := Health(now, tt.feeds, DefaultWedgeAfter)
		if ok != tt.ok || s != tt.summary {
			t.Errorf("%s: (%v, %q), want (%v, %q)", tt.name, ok, s, tt.ok, tt.summary)
		}
	}
}
