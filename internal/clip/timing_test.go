package clip

import (
	"strconv"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// publishBusy fills the source with secs of history that ends now,
// captured every frame interval but received as a busy machine delivers
// it (testfeed.Busy), with nothing at all during pause (a camera pause)
// from pauseAt seconds in. Without captureTimes, the stream carries no
// capture time SEI, as from most cameras: only the arrival times are
// known.
func (s *source) publishBusy(secs, pauseAt float64, pause time.Duration, captureTimes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	frame := time.Second / time.Duration(s.fps)
	n := int(secs * float64(s.fps))
	start := time.Now().Add(-time.Duration(n) * frame)
	var busy testfeed.Busy
	for i := range n {
		capt := start.Add(time.Duration(i) * frame)
		if at := time.Duration(pauseAt * float64(time.Second)); pause > 0 && capt.Sub(start) >= at && capt.Sub(start) < at+pause {
			continue
		}
		recv := busy.Received(i, start, capt, frame)
		nalus, _ := s.g.Next(capt)
		if !captureTimes {
			nalus = testfeed.WithoutCaptureTime(nalus)
		}
		s.p.WriteAU(nalus, recv, s.h.Publish)
	}
}

// TestClipTimingUnderLoad: under load, consecutive samples of a clip sat
// 1 tick apart at 90 kHz and then 2,999 apart, and ffmpeg, converting the
// clip, said "non monotonically increasing dts". With arrivals that
// jitter, bunch up and pause, every sample is now one frame interval
// (±1 tick) but for the pause, which stays one; ffmpeg decodes and
// re-encodes the clip without a word.
func TestClipTimingUnderLoad(t *testing.T) {
	for _, capture := range []bool{false, true} {
		t.Run("capture times "+strconv.FormatBool(capture), func(t *testing.T) {
			testClipTiming(t, capture)
		})
	}
}

func testClipTiming(t *testing.T, captureTimes bool) {
	needTool(t, "ffmpeg")
	src := newSource(t, 30, 30)
	src.publishBusy(20, 12, 1500*time.Millisecond, captureTimes)
	ts := serve(t, New(Config{}, feeds{"cam": src.h}, nil))
	resp, body := get(t, ts.URL+"/cam/clip.mp4?seconds=15")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	path := writeTemp(t, body)
	long := 0
	for i, d := range testsupport.SampleSpacings(t, path) {
		switch {
		case d >= 2999 && d <= 3001:
		case d >= 3000*40 && d <= 3000*50: // the 1.5 s pause
			long++
		default:
			t.Errorf("sample %d lasts %d ticks, want 3000 ±1", i, d)
		}
	}
	if long != 1 {
		t.Errorf("%d samples hold the pause, want 1", long)
	}
	decodes(t, path)
	testsupport.Reencodes(t, path)
}
