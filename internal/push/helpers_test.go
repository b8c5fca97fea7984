package push_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

const (
	nginxBin    = "/usr/sbin/nginx"
	rtmpModule  = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	testGOP     = time.Second // Intra 30 at 30 fps
	testLagBase = 500 * time.Millisecond
)

// needNginx skips (or fails, with CAMFEED_REQUIRE_TOOLS=1) without nginx
// and its RTMP module (Debian: nginx, libnginx-mod-rtmp).
func needNginx(t *testing.T) {
	t.Helper()
	for _, p := range []string{nginxBin, rtmpModule} {
		if _, err := os.Stat(p); err != nil {
			testsupport.Missing(t, p)
		}
	}
}

// freePort returns a loopback port that was free a moment ago, for a
// server whose config needs a number.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// nginx is an nginx-rtmp server run by a test: application "live"
// records every stream to Dir/NAME.flv.
type nginx struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNginx runs nginx-rtmp on port; onPublish, when set, is the URL
// nginx asks before accepting a publisher (a 2xx answer accepts).
func startNginx(t *testing.T, port int, onPublish string) *nginx {
	t.Helper()
	needNginx(t)
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	if err := os.Mkdir(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	notify := ""
	if onPublish != "" {
		notify = "on_publish " + onPublish + ";"
	}
	conf := fmt.Sprintf(`load_module %s;
worker_processes 1;
user root; # workers write the recordings into the test's own (0700) directory
pid %s/nginx.pid;
error_log %s/error.log info;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:%d;
    ping 0;
    application live {
      live on;
      record all;
      record_path %s;
      record_unique off;
      %s
    }
  }
}
`, rtmpModule, dir, dir, port, rec, notify)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", cf, "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nginx{Port: port, Dir: rec, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(n.kill)
	testsupport.Eventually(t, "nginx listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return n
}

// stop ends nginx gracefully (its recordings are complete).
func (n *nginx) stop() {
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(testsupport.Patience):
		n.kill()
	}
}

// kill ends nginx at once, as a crash would.
func (n *nginx) kill() {
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
}

// pushing runs pushes of a fresh test-pattern feed "cam" to urls until
// the test ends (or stop is called).
type pushing struct {
	P    *push.Pushes
	Feed *testfeed.Feed
	Log  *testsupport.LogBuffer

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startPush(t *testing.T, cfg push.Config, lag time.Duration, urls ...string) *pushing {
	t.Helper()
	f := testfeed.Start(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{LagBudget: lag})
	d := door.Unlimited(testfeed.Feeds{"cam": f.Hub})
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("push logs:\n%s", logs.String())
		}
	})
	p := push.New(cfg, d, log)
	for _, u := range urls {
		if err := p.Add("cam", push.Target{URL: u}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps := &pushing{P: p, Feed: f, Log: logs, cancel: cancel}
	ps.wg.Go(func() { p.Run(ctx) })
	t.Cleanup(ps.stop)
	return ps
}

func (ps *pushing) stop() {
	ps.cancel()
	ps.wg.Wait()
}

func (ps *pushing) status() push.Status { return ps.P.All()[0] }

// waitLive waits until the push has sent n more frames while live.
func (ps *pushing) waitFrames(t *testing.T, n uint64) {
	t.Helper()
	start := ps.status().Frames
	testsupport.Eventually(t, fmt.Sprintf("%d frames pushed", n), func() bool {
		st := ps.status()
		return st.State == push.StateLive && st.Frames >= start+n
	})
}

// checkRecording checks a file a server recorded: it decodes with no
// error, its first picture is a keyframe, and every gap in it ends at a
// keyframe. It returns the jumps to a keyframe.
func checkRecording(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		ents, _ := os.ReadDir(filepath.Dir(path))
		errlog, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(path)), "error.log"))
		t.Fatalf("no recording: %v; dir has %v\nnginx error.log:\n%s", err, ents, errlog)
	}
	p := testsupport.FFprobe(t, path)
	if !p.FirstKey || p.Frames < 10 {
		t.Fatalf("%s: first packet keyframe %v, %d frames: want a keyframe first and some frames", filepath.Base(path), p.FirstKey, p.Frames)
	}
	// Timestamps are capture times, not a constant frame rate: the null
	// muxer is told to pass them through rather than retime them.
	if out, err := testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("ffmpeg decode of %s: %v\n%s", filepath.Base(path), err, out)
	}
	annexB := filepath.Join(t.TempDir(), "out.h264")
	if out, err := testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", annexB); err != nil {
		t.Fatalf("extracting H.264 from %s: %v\n%s", filepath.Base(path), err, out)
	}
	data, err := os.ReadFile(annexB)
	if err != nil {
		t.Fatal(err)
	}
	return testfeed.CheckStream(t, filepath.Base(path), testfeed.Units(data))
}
