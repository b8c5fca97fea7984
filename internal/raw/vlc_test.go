package raw

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestVLC plays /stream.h264 over HTTP with cvlc and has its scene filter
// save every 10th decoded picture: VLC must decode the stream at its
// size. (Debian's VLC has no RTSP client, being built without live555,
// so this is the check VLC can do there; docs/RTSP.md lists the RTSP
// players that are tested.) VLC refuses to run as root: the test drops
// to nobody when it is root.
func TestVLC(t *testing.T) {
	cvlc := testsupport.NeedTool(t, "cvlc")
	// Not t.TempDir: nobody must reach it, and t.TempDir's parent is 0700.
	home, err := os.MkdirTemp("", "camfeed-vlc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	shots := filepath.Join(home, "shots")
	if err := os.Mkdir(shots, 0o777); err != nil {
		t.Fatal(err)
	}
	var prefix []string
	if os.Geteuid() == 0 {
		prefix = []string{testsupport.NeedTool(t, "setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"}
		for _, d := range []string{home, shots} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, feeds := startFeed(t)
	base := testsupport.Serve(t, (&HTTP{Door: door.Unlimited(feeds), DefaultFeed: "cam", Log: quiet()}).Register)
	args := append(prefix, "env", "HOME="+home, cvlc, "-I", "dummy", "--no-audio", "--vout", "dummy",
		"--video-filter", "scene", "--scene-format", "png", "--scene-path", shots, "--scene-ratio", "10", "--scene-prefix", "f",
		base+"/cam/stream.h264")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	// A live stream does not end: stop VLC once it has saved 4 pictures.
	deadline := time.Now().Add(6 * testsupport.Patience)
	var files []string
	for len(files) < 4 {
		select {
		case err := <-exited:
			t.Fatalf("cvlc exited: %v\n%s", err, tail(out.String()))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("VLC saved %d pictures (every 10th decoded) in %v\n%s", len(files), 6*testsupport.Patience, tail(out.String()))
		}
		files, _ = filepath.Glob(filepath.Join(shots, "f*.png"))
	}
	stop()
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(r)
		r.Close()
		// VLC's scene filter scales by the aspect ratio it infers, and
		// saves a 320x240 stream as 320x258: the width is the check.
		if err != nil || cfg.Width != 320 || cfg.Height < 240 || cfg.Height > 272 {
			t.Errorf("%s: %dx%d (%v), want 320 wide, about 240 high", filepath.Base(f), cfg.Width, cfg.Height, err)
		}
	}
	t.Logf("VLC decoded the HTTP stream: %d pictures saved (every 10th)", len(files))
}

// tail is the end of a long log.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
