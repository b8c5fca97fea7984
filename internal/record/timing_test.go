package record

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// TestRecordTimingUnderLoad: recordings took their sample times from
// arrival times as clips did, and under load ffmpeg converting a segment
// said "non monotonically increasing dts". With arrivals that jitter and
// bunch up (testfeed.Busy) and no capture times in the stream, every
// sample of every segment is one frame interval, ±1 tick, and ffmpeg
// decodes and re-encodes each segment without a word.
func TestRecordTimingUnderLoad(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	rr := start(t, Config{Dir: t.TempDir(), Segment: 4 * time.Second}, f)
	func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		frame := time.Second / 30
		n := 13 * 30
		start := time.Now().Add(-time.Duration(n) * frame)
		var busy testfeed.Busy
		for i := range n {
			capt := start.Add(time.Duration(i) * frame)
			nalus, _ := f.g.Next(capt)
			f.p.WriteAU(testfeed.WithoutCaptureTime(nalus), busy.Received(i, start, capt, frame), f.h.Publish)
			time.Sleep(200 * time.Microsecond) // as fast as the recorder takes it
		}
	}()
	rr.caughtUp(t, f)
	rr.stop()
	rr.mu.Lock()
	segs := append([]Segment(nil), rr.segs...)
	rr.mu.Unlock()
	if len(segs) < 2 {
		t.Fatalf("%d segments", len(segs))
	}
	for _, s := range segs {
		path := filepath.Join(rr.dir, s.Name)
		for i, d := range testsupport.SampleSpacings(t, path) {
			if d < 2999 || d > 3001 {
				t.Errorf("%s: sample %d lasts %d ticks, want 3000 ±1", s.Name, i, d)
			}
		}
		testsupport.Decodes(t, path)
		testsupport.Reencodes(t, path)
	}
}
