package app

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestRTSPWiring: the app serves its feed over RTSP (ffprobe over TCP
// reads it at the right size), and a publish feed takes an ffmpeg
// publisher that a viewer of the same feed then sees.
func TestRTSPWiring(t *testing.T) {
	t.Parallel()
	ffprobe := testsupport.NeedTool(t, "ffprobe")
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	file := testStream(t, 90, nil)
	ta := startApp(t, func(c *config.Config) {
		c.RTSP = "127.0.0.1:0"
		c.RTSPTransports = []string{"tcp"}
		c.Feeds["door"] = &config.Feed{Source: "publish"}
		c.Users = []auth.User{{Name: "pub", Password: "plain:pw", Permissions: []string{"publish:door", "read"}}}
		yes := true
		c.AnonymousRead = &yes
	})
	ta.waitFrames(t, "cam", 10)
	base := "rtsp://" + ta.addrs["rtsp"].String()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name,width,height",
		"-of", "csv=p=0", base+"/cam").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "h264,640,480" {
		t.Fatalf("ffprobe %s/cam: %v %s", base, err, out)
	}
	// A publisher without credentials is refused; with them it feeds "door".
	anon := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-re", "-f", "h264", "-i", file, "-c", "copy", "-rtsp_transport", "tcp", "-f", "rtsp", base+"/door")
	if err := anon.Run(); err == nil {
		t.Error("anonymous publisher accepted")
	}
	pubURL := strings.Replace(base, "rtsp://", "rtsp://pub:pw@", 1) + "/door"
	pub := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-re", "-stream_loop", "-1", "-f", "h264", "-framerate", "30", "-i", file,
		"-c", "copy", "-rtsp_transport", "tcp", "-f", "rtsp", pubURL)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pub.Process.Kill(); pub.Wait() }()
	ta.waitFrames(t, "door", 30)
	out, err = exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=width,height",
		"-of", "csv=p=0", base+"/door").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "320,240" {
		t.Fatalf("ffprobe door: %v %s", err, out)
	}
}
