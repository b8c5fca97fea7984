package hls

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestPartDurationsSteady: under load gohlslib logged "part duration
// changed from 301ms to 309ms - this will cause an error in iOS clients"
// 41 times in 17 minutes: the muxer was given arrival times, which jitter,
// so parts held different numbers of frames. Fed ten minutes of frames
// whose arrival jitters by up to 8 ms, with one in 13 a whole frame late
// (it comes with the next), the muxer never says so.
func TestPartDurationsSteady(t *testing.T) {
	for _, fps := range []int{30, 25, 10} {
		t.Run(time.Duration(time.Second/time.Duration(fps)).String(), func(t *testing.T) {
			g, err := testsrc.New(testsrc.Config{Width: 64, Height: 64, FPS: fps, Intra: 2 * fps})
			if err != nil {
				t.Fatal(err)
			}
			var logs testsupport.LogBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			frame := time.Second / time.Duration(fps)
			// Measured a little off from the hub's units, or (at 25 fps)
			// measured by the muxer from its first second of units.
			est := frame + frame/200
			if fps == 25 {
				est = 0
			}
			m, err := newMuxer(Config{SegmentCount: 7, SegmentDuration: time.Second, PartDuration: 200 * time.Millisecond, SegmentMaxSize: 16 << 20},
				"cam", 1, g.SPS(), g.PPS(), est, log)
			if err != nil {
				t.Fatal(err)
			}
			defer m.mux.Close()
			t0 := time.Now()
			x := uint32(1)
			n := 600 * fps
			for i := range n {
				x = x*1664525 + 1013904223
				late := time.Duration(uint64(x>>8) * uint64(8*time.Millisecond) >> 24)
				if i%13 == 5 {
					late = frame
				}
				nalus, key := g.Next(t0.Add(time.Duration(i) * frame))
				au := &h264.AccessUnit{Keyframe: key, Received: t0.Add(time.Duration(i)*frame + late)}
				for _, n := range nalus {
					au.NALUs = append(au.NALUs, bytes.Clone(n))
				}
				if err := m.write(au); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Contains(logs.String(), "part duration changed") {
				lines := logs.Lines()
				t.Errorf("%d warnings, the first: %s", len(lines), lines[0])
			}
			// And the media clock kept to the source's: within a frame
			// after ten minutes.
			if off := time.Duration(m.clock.Last())*time.Second/90000 - time.Duration(n-1)*frame; off < -frame || off > frame {
				t.Errorf("after %d frames the media time is %v off", n, off)
			}
		})
	}
}
