package testsrc

import (
	"context"
	"time"
)

// Run generates frames in real time at the configured frame rate and calls
// emit for each with its NAL units (valid only during the call, see Next),
// whether it is a keyframe, and its capture time, which is the wall clock
// just before the frame was drawn. It stops after frames frames when
// frames > 0 and returns nil; otherwise it runs until ctx ends and returns
// ctx.Err(). An error from emit stops it and is returned as is.
//
// Frames are due at fixed intervals from the start. When emit is slow and
// Run falls more than a frame behind, it drops the schedule and starts
// again from now rather than sending a burst: a live source should show
// the present, not catch up on the past.
func (g *Generator) Run(ctx context.Context, frames int, emit func(nalus [][]byte, keyframe bool, t time.Time) error) error {
	period := time.Second / time.Duration(g.cfg.FPS)
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var k int64 // frames due since start
	for n := 0; frames <= 0 || n < frames; n++ {
		due := start.Add(time.Duration(k * int64(time.Second) / int64(g.cfg.FPS)))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			return err
		} else if -wait > period {
			start, k = time.Now(), 0
		}
		k++
		t := time.Now()
		nalus, key := g.Next(t)
		if err := emit(nalus, key, t); err != nil {
			return err
		}
	}
	return nil
}
