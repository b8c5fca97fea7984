package app

import (
	"context"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/hub"
)

// TestRequestKeyframe: a WebRTC viewer's keyframe request reaches the
// test pattern, which makes a keyframe long before its GOP would.
func TestRequestKeyframe(t *testing.T) {
	a := startApp(t, func(c *config.Config) { c.Feeds[config.DefaultFeed].Intra = 600 })
	h, _ := a.Hub(config.DefaultFeed)
	join := hub.JoinNext
	sub := h.Subscribe(hub.SubOptions{Output: "test", Join: &join})
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.RequestKeyframe(config.DefaultFeed) // the first keyframe, at once
	f, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := f.Received
	// At start the pattern's own first keyframe and the requested one can
	// come a frame or two apart (the request was made before the pattern's
	// first frame, or while it was being made): the last of them is the
	// first here, once five frames have followed it.
	for quiet := 0; quiet < 5; {
		f, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Keyframe {
			first, quiet = f.Received, 0
		} else {
			quiet++
		}
	}
	// 36 frames, 1.2 s of the stream at 30 fps: longer than the source's
	// limit of one requested keyframe per 500 ms, so the next request is
	// honoured.
	for range 36 {
		f, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Keyframe {
			t.Fatalf("a keyframe %v after the first without a request: the GOP is not 600 frames", f.Received.Sub(first))
		}
	}
	a.RequestKeyframe(config.DefaultFeed)
	a.RequestKeyframe("no such feed")
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("no keyframe after the request: %v", err)
		}
		if f.Keyframe {
			if d := f.Received.Sub(first); d > 5*time.Second {
				t.Errorf("keyframe %v after the first, with a GOP of 600 frames", d)
			}
			return
		}
	}
}
