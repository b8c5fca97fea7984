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

// ffmpegRTSP is ffmpeg listening on a port for one RTSP publisher
// (ANNOUNCE/RECORD) and copying what it gets to a file.
type ffmpegRTSP struct {
	cmd  *exec.Cmd
	done chan error
	out  string
}

func startFFmpegRTSP(t *testing.T, port int, name string) *ffmpegRTSP {
	t.Helper()
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	f := &ffmpegRTSP{out: filepath.Join(t.TempDir(), name), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f.cmd = exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-rtsp_flags", "listen", "-timeout", "60",
		"-i", fmt.Sprintf("rtsp://127.0.0.1:%d/x", port), "-c", "copy", f.out)
	f.cmd.Stdout, f.cmd.Stderr = os.Stderr, os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() { _ = f.cmd.Process.Kill(); <-f.done })
	return f
}

// finished waits for ffmpeg to end by itself (the push's TEARDOWN).
func (f *ffmpegRTSP) finished(t *testing.T) {
	t.Helper()
	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("ffmpeg: %v", err)
		}
	case <-time.After(testsupport.Patience):
		t.Fatal("ffmpeg did not finish after the push ended")
	}
}

// TestRTSPIntoFFmpeg records into ffmpeg listening for an RTSP publisher
// (ANNOUNCE/RECORD) and checks what it wrote.
func TestRTSPIntoFFmpeg(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "gortsplib")
	port := freePort(t)
	f := startFFmpegRTSP(t, port, "got.mkv")
	// ffmpeg listens a moment after it starts: the push retries meanwhile.
	ps := startPush(t, push.Config{Backoff: 200 * time.Millisecond}, testLagBase, fmt.Sprintf("rtsp://127.0.0.1:%d/x", port))
	ps.waitFrames(t, 90)
	ps.stop() // TEARDOWN: ffmpeg ends its input and closes the file
	f.finished(t)
	checkRecording(t, f.out)
}

// TestRTSPTargetDiesMidStream: the server is killed while recording; the
// push notices, reconnects to the next one on the same port, and that
// recording starts at a keyframe and decodes cleanly.
func TestRTSPTargetDiesMidStream(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "gortsplib")
	port := freePort(t)
	first := startFFmpegRTSP(t, port, "first.mkv")
	ps := startPush(t, push.Config{Backoff: 200 * time.Millisecond}, testLagBase, fmt.Sprintf("rtsp://127.0.0.1:%d/x", port))
	ps.waitFrames(t, 60)
	_ = first.cmd.Process.Kill()
	testsupport.Eventually(t, "the push to notice", func() bool { return ps.status().State != push.StateLive })
	second := startFFmpegRTSP(t, port, "second.mkv")
	ps.waitFrames(t, 60)
	if st := ps.status(); st.Reconnects == 0 || st.LastError == "" {
		t.Errorf("status %+v: want a reconnect counted and the error in words", st)
	}
	ps.stop()
	second.finished(t)
	checkRecording(t, second.out)
}
