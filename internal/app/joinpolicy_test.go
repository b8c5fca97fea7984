package app

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestJoinPolicyDisplayLatency plays the raw HTTP stream with ffmpeg as a
// real-time player (-re: frames come out at the stream's frame rate, as a
// player shows them) and reads the pixel time code of every frame as it
// comes out: now minus that is the display latency. For each join policy
// it reports the time to the first picture and the latency after a few
// seconds. This is what chose the default policy (docs/ARCHITECTURE.md).
// It is a measurement (CAMFEED_PERF=1): wall-clock figures from a shared
// machine say nothing.
func TestJoinPolicyDisplayLatency(t *testing.T) {
	testsupport.Measurement(t)
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	for _, policy := range []string{"instant", "keyframe", "next"} {
		t.Run(policy, func(t *testing.T) {
			ta := startApp(t, func(c *config.Config) {
				c.Join = policy
				c.Feeds["cam"].Intra = 60 // a 2 s GOP makes the trade-off plain
			})
			ta.waitFrames(t, "cam", 70) // join 10 frames (0.33 s) into a GOP... roughly
			h, _ := ta.Hub("cam")
			for h.Stats().Units%60 < 40 { // join late in a GOP: the keyframe is 1.3 s old
				time.Sleep(5 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-re", "-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer", "-flags", "low_delay",
				"-f", "h264", "-i", ta.url("/stream.h264"), "-f", "rawvideo", "-pix_fmt", "gray", "-")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			r := bufio.NewReaderSize(out, 1<<20)
			frame := make([]byte, 640*480)
			var first time.Duration
			var lats []time.Duration
			for time.Since(start) < 6*time.Second {
				if _, err := io.ReadFull(r, frame); err != nil {
					t.Fatal(err)
				}
				now := time.Now()
				tc, err := testsrc.ReadTimeCode(frame, 640, 480)
				if err != nil {
					t.Fatal(err)
				}
				if first == 0 {
					first = now.Sub(start)
				}
				if now.Sub(start) > 4*time.Second {
					lats = append(lats, now.Sub(tc))
				}
			}
			t.Logf("join=%s: first picture after %v; display latency 4-6 s after joining: p50 %v max %v",
				policy, first.Round(time.Millisecond), percentile(lats, 0.5).Round(time.Millisecond), percentile(lats, 1).Round(time.Millisecond))
			if policy == "instant" && percentile(lats, 0.5) > 500*time.Millisecond {
				t.Errorf("instant join left a backlog: %v", percentile(lats, 0.5))
			}
		})
	}
}
