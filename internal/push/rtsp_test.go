package push_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestRTSPIntoFFmpeg records into ffmpeg listening for an RTSP publisher
// (ANNOUNCE/RECORD) and checks what it wrote.
func TestRTSPIntoFFmpeg(t *testing.T) {
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	testsupport.CheckGoroutines(t, "internal/push", "gortsplib")
	port := freePort(t)
	out := filepath.Join(t.TempDir(), "got.mkv")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-rtsp_flags", "listen", "-timeout", "60",
		"-i", fmt.Sprintf("rtsp://127.0.0.1:%d/x", port), "-c", "copy", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// ffmpeg listens a moment after it starts: the push retries meanwhile.
	ps := startPush(t, push.Config{Backoff: 200 * time.Millisecond}, testLagBase, fmt.Sprintf("rtsp://127.0.0.1:%d/x", port))
	ps.waitFrames(t, 90)
	ps.stop() // TEARDOWN: ffmpeg ends its input and closes the file
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ffmpeg: %v", err)
		}
	case <-time.After(testsupport.Patience):
		_ = cmd.Process.Kill()
		t.Fatal("ffmpeg did not finish after the push ended")
	}
	checkRecording(t, out)
}
