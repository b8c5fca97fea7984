package config_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/clip"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// TestDefaultBufferHoldsTheLongestClip: with the default buffer, a clip of
// the longest length the docs use (clip.mp4?seconds=30) is whole, even with
// the longest GOP the default allows for: the keyframe it starts from is
// still in RAM. Judged on the stream's own clock: frames are stamped at
// the frame rate, not by when this test ran.
func TestDefaultBufferHoldsTheLongestClip(t *testing.T) {
	t.Parallel()
	const fps = 30
	cfg := config.Default()
	fc := cfg.Effective(config.DefaultFeed)
	if fc.Buffer.Duration != config.LongestClip+config.GOPMargin {
		t.Fatalf("default buffer %s; want the longest clip %s plus a GOP %s", fc.Buffer, config.LongestClip, config.GOPMargin)
	}
	intra := int(config.GOPMargin.Seconds() * fps)
	gen, err := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: fps, Intra: intra})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{MaxBytes: fc.BudgetBytes(), Window: fc.Buffer.Duration, LagBudget: fc.LagBudget})
	defer h.Close()
	p := h264.NewParser(h264.ParserConfig{StampIngest: true})
	frame := time.Second / fps
	// More stream than the buffer holds, ending now, with the keyframe
	// before the clip's start as far back as it can be: the clip starts
	// (30 s before the end of the newest frame) one frame before a
	// keyframe, so it has to begin at the keyframe a GOP earlier.
	clipFrames := int(config.LongestClip / frame)
	n := clipFrames + intra*(1+int(fc.Buffer.Duration/frame)/intra)
	n -= (n - clipFrames + 1) % intra
	t0 := time.Now().Add(-time.Duration(n) * frame)
	for i := range n {
		ts := t0.Add(time.Duration(i) * frame)
		nalus, _ := gen.Next(ts)
		p.WriteAU(nalus, ts, h.Publish)
	}

	cs := clip.New(clip.Config{}, testfeed.Feeds{config.DefaultFeed: h}, nil)
	defer cs.Close()
	mux := route.New(func(_ route.Access, next http.Handler) http.Handler { return next })
	cs.Register(mux)
	for _, secs := range []time.Duration{config.LongestClip, 10 * time.Second} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/cam/clip.mp4?seconds="+strconv.Itoa(int(secs.Seconds())), nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s clip: %d %s", secs, rec.Code, rec.Body)
		}
		got, _ := strconv.ParseFloat(rec.Header().Get("X-Camfeed-Clip-Seconds"), 64)
		if tr := rec.Header().Get("X-Camfeed-Clip-Truncated"); tr != "false" || got < secs.Seconds()-frame.Seconds()/2 {
			t.Errorf("a %s clip with the default buffer: %.3f s, truncated %s", secs, got, tr)
		}
	}
}
