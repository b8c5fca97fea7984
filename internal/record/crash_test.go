package record

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

const childEnv = "CAMFEED_RECORD_CHILD_DIR"

// TestRecordChild is the process TestRecordKilled kills: it records a live
// test pattern into the directory in childEnv until killed.
func TestRecordChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("run by TestRecordKilled")
	}
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 10})
	f.live(t)
	r := New(Config{Dir: dir, Segment: time.Second}, "cam", f.h, nil)
	_ = r.Run(context.Background())
}

// TestRecordKilled kills a recording process with SIGKILL in the middle of
// a segment. At the next start no part file is left, and every listed
// segment plays: the cut one is kept up to its last whole fragment.
func TestRecordKilled(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	dir := t.TempDir()
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRecordChild$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			if errors.Is(err, syscall.ENOEXEC) {
				// Under qemu-user (go test -exec qemu-arm) the test binary
				// is an ARM program this machine cannot start by itself.
				t.Skipf("cannot re-run the test binary as a child under an emulator: %v", err)
			}
			t.Fatal(err)
		}
		// Kill it once it has finished a segment or two and is halfway
		// through the next.
		deadline := time.Now().Add(20 * time.Second)
		for {
			var done, part int
			for _, n := range files(filepath.Join(dir, "cam")) {
				if strings.HasSuffix(n, partExt) {
					part++
				} else {
					done++
				}
			}
			if done >= 2*(round+1) && part == 1 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child recorded nothing: %v", files(filepath.Join(dir, "cam")))
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(100+round*250) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	before := files(filepath.Join(dir, "cam"))
	r := New(Config{Dir: dir}, "cam", newFeed(t, testsrc.Config{}).h, nil)
	if err := r.recover(); err != nil {
		t.Fatal(err)
	}
	t.Logf("after two kills: %v; repaired: %v", before, files(r.dir))
	if len(r.segs) < 4 {
		t.Errorf("%d segments listed", len(r.segs))
	}
	checkSegments(t, r, 0) // live under load: frames may come late
}
