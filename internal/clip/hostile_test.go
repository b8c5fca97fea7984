package clip

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// switchSize makes src publish pictures of w x h from its next unit on, as
// a camera does whose mode was changed without a restart.
func (s *source) switchSize(t testing.TB, w, h int) {
	t.Helper()
	g, err := testsrc.New(testsrc.Config{Width: w, Height: h, FPS: s.fps, Intra: 15})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.g = g
	s.mu.Unlock()
}

// TestHostileClipAcrossResolutionChange: a clip of the last 25 s, when the
// picture size changed 15 s ago, holds only the newest 15 s, says it is
// truncated, and decodes without one error (it used to mix both sizes
// under one sample entry: hundreds of decode errors, "not truncated").
func TestHostileClipAcrossResolutionChange(t *testing.T) {
	needTool(t, "ffmpeg")
	src := newSource(t, 30, 15)
	src.switchSize(t, 320, 240)
	end := time.Now()
	for i := 25 * 30; i > 0; i-- {
		if i == 15*30 {
			src.switchSize(t, 640, 480)
		}
		src.publish(end.Add(-time.Duration(i) * time.Second / 30))
	}
	ts := serve(t, New(Config{}, feeds{"cam": src.h}, nil))
	resp, body := get(t, ts.URL+"/cam/clip.mp4?seconds=25")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Camfeed-Clip-Truncated"); got != "true" {
		t.Errorf("X-Camfeed-Clip-Truncated %q across a size change, want true", got)
	}
	path := writeTemp(t, body)
	decodes(t, path)
	p := ffprobe(t, path)
	if p.Width != 640 || p.Height != 480 {
		t.Errorf("clip is %dx%d, want the newest size 640x480", p.Width, p.Height)
	}
	if p.Duration < 14 || p.Duration > 15.5 {
		t.Errorf("clip lasts %.3f s, want the 15 s since the change", p.Duration)
	}
}

// TestHostileClipAfterResolutionChange: when the size changes while an
// after= clip waits, the clip ends at the change, truncated, and decodes
// cleanly.
func TestHostileClipAfterResolutionChange(t *testing.T) {
	needTool(t, "ffmpeg")
	src := newSource(t, 30, 15)
	src.switchSize(t, 320, 240)
	src.fill(5)
	ts := serve(t, New(Config{}, feeds{"cam": src.h}, nil))
	type result struct {
		code      int
		truncated string
		body      []byte
	}
	done := make(chan result, 1)
	go func() {
		resp, body := get(t, ts.URL+"/cam/clip.mp4?seconds=3&after=3")
		done <- result{resp.StatusCode, resp.Header.Get("X-Camfeed-Clip-Truncated"), body}
	}()
	for src.h.Stats().Viewers["clip"] == 0 {
		time.Sleep(time.Millisecond)
	}
	// One more second at the old size, then the new size, live.
	next := time.Now()
	for i := range 5 * 30 {
		if i == 30 {
			src.switchSize(t, 640, 480)
		}
		time.Sleep(time.Until(next))
		src.publish(next)
		next = next.Add(time.Second / 30)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no clip 30 s after asking")
	}
	if res.code != 200 {
		t.Fatalf("status %d: %s", res.code, res.body)
	}
	if res.truncated != "true" {
		t.Errorf("X-Camfeed-Clip-Truncated %q, want true", res.truncated)
	}
	path := writeTemp(t, res.body)
	decodes(t, path)
	if p := ffprobe(t, path); p.Width != 320 || p.Height != 240 {
		t.Errorf("clip is %dx%d, want 320x240, the size when it was asked for", p.Width, p.Height)
	}
}
