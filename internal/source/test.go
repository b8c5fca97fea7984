package source

import (
	"context"
	"fmt"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// Test is the built-in test pattern: a real H.264 stream made in pure Go,
// with a moving clock, a capture-time SEI and a pixel time code.
type Test struct {
	Config testsrc.Config
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
	return g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
		sink.WriteAU(nalus)
		return nil
	})
}
