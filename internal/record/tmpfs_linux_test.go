package record

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// tmpfs mounts a small tmpfs for a test, or skips it where mounting is
// not allowed (not root, or a container without CAP_SYS_ADMIN).
func tmpfs(t *testing.T, size string) string {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestRecordSmallDisk records onto a real 2 MiB filesystem, with a
// MaxBytes larger than the disk: MinFree stops it before the disk fills,
// and what is listed plays.
func TestRecordSmallDisk(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	dir := tmpfs(t, "2m")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	rr := start(t, Config{Dir: dir, Segment: 3 * time.Second, MaxBytes: 1 << 30, MinFree: 512 << 10}, f)
	f.publish(20) // about 2.3 MB
	rr.caughtUp(t, f)
	st := rr.Status()
	free, _ := diskFree(rr.dir)
	t.Logf("status %+v; %d KiB free", st, free>>10)
	if st.State != StatePaused || !strings.HasPrefix(st.Reason, ErrDiskFull.Error()) {
		t.Errorf("status %+v", st)
	}
	if free < 512<<10-64<<10 { // within a page or so of the floor
		t.Errorf("only %d KiB left free", free>>10)
	}
	rr.stop()
	checkSegments(t, rr.Recorder, 30)
}

// TestRecordDiskFullWrite lets writes fail with ENOSPC (no MinFree to
// stop before): the recorder cuts the failed fragment off, closes the
// segment, pauses with the error, and what is listed plays.
func TestRecordDiskFullWrite(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	dir := tmpfs(t, "1m")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	rr := start(t, Config{Dir: dir, Segment: time.Minute, MaxBytes: 1 << 30}, f, func(r *Recorder) {
		r.free = func(string) (int64, error) { return 1 << 40, nil } // a filesystem that lies
	})
	f.publish(12)
	rr.caughtUp(t, f)
	st := rr.Status()
	if st.State != StatePaused || !strings.Contains(st.Reason, "no space left on device") || st.Dropped == 0 {
		t.Errorf("status %+v", st)
	}
	rr.stop()
	if len(rr.segs) != 1 {
		t.Fatalf("segments %v", rr.segs)
	}
	checkSegments(t, rr.Recorder, 30)
	os.RemoveAll(rr.dir)
}
