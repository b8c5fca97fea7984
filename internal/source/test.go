package source

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// keyframeEvery bounds forced keyframes per feed: an IDR costs several P
// frames of bitrate, and every viewer's picture loss may ask for one.
const keyframeEvery = 500 * time.Millisecond

// Test is the built-in test pattern: a real H.264 stream made in pure Go,
// with a moving clock, a capture-time SEI and a pixel time code.
type Test struct {
	Config testsrc.Config

	gen     atomic.Pointer[testsrc.Generator] // the running attempt's
	lastKey atomic.Int64                      // Unix ns of the last forced keyframe
}

func (t *Test) String() string {
	c := t.Config
	w, h, fps := c.Width, c.Height, c.FPS
	if w == 0 || h == 0 {
		w, h = testsrc.DefaultWidth, testsrc.DefaultHeight
	}
	if fps == 0 {
		fps = testsrc.DefaultFPS
	}
	return fmt.Sprintf("test pattern %dx%d@%d", w, h, fps)
}

// Run implements Source. Each access unit goes to the sink as one framed
// unit, so it reaches viewers without waiting for the next one.
func (t *Test) Run(ctx context.Context, sink Sink) error {
	g, err := testsrc.New(t.Config)
	if err != nil {
		return fmt.Errorf("test pattern: %w", err)
	}
	t.gen.Store(g)
	defer t.gen.CompareAndSwap(g, nil)
	return g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
		sink.WriteAU(nalus)
		return nil
	})
}

// RequestKeyframe implements KeyframeRequester: the next frame is an IDR,
// at most one forced every keyframeEvery.
func (t *Test) RequestKeyframe() {
	g := t.gen.Load()
	if g == nil {
		return
	}
	now := time.Now().UnixNano()
	last := t.lastKey.Load()
	if now-last < int64(keyframeEvery) || !t.lastKey.CompareAndSwap(last, now) {
		return
	}
	g.RequestKeyframe()
}
