package record

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// checkSegments checks every listed segment: its name's duration matches
// ffprobe's, it starts with a keyframe and decodes without errors, and
// with a steady feed (fps > 0) it holds as many frames as its duration
// says. No part file is left once the recorder stopped.
func checkSegments(t *testing.T, r *Recorder, fps int) (total float64) {
	t.Helper()
	r.mu.Lock()
	segs := append([]Segment(nil), r.segs...)
	r.mu.Unlock()
	for _, s := range segs {
		path := filepath.Join(r.dir, s.Name)
		info, err := os.Stat(path)
		if err != nil || info.Size() != s.Bytes {
			t.Errorf("%s: %v, %d bytes listed", s.Name, err, s.Bytes)
			continue
		}
		p := testsupport.FFprobe(t, path)
		if math.Abs(p.Duration-s.Seconds) > 0.002 || !p.FirstKey {
			t.Errorf("%s: ffprobe %+v", s.Name, p)
		}
		if fps > 0 && math.Abs(float64(p.Frames)-s.Seconds*float64(fps)) > 1 {
			t.Errorf("%s: %d frames in %.3f s", s.Name, p.Frames, s.Seconds)
		}
		total += s.Seconds
	}
	for _, n := range files(r.dir) {
		if strings.HasSuffix(n, partExt) {
			t.Errorf("part file %s left", n)
		}
	}
	return total
}

func TestRecordSegments(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 15})
	cfg := Config{Dir: t.TempDir(), Segment: 2 * time.Second}
	rr := start(t, cfg, f)
	f.publish(9)
	rr.caughtUp(t, f)
	if st := rr.Status(); st.State != StateRecording {
		t.Errorf("status %+v", st)
	}
	rr.stop()
	if st := rr.Status(); st.State != StateStopped || st.Segments != 5 {
		t.Errorf("status %+v, want 5 segments", st)
	}
	total := checkSegments(t, rr.Recorder, 30)
	if math.Abs(total-9) > 1.0/30 {
		t.Errorf("segments hold %.3f s of 9 s", total)
	}
	for i, s := range rr.segs {
		if i < len(rr.segs)-1 && math.Abs(s.Seconds-2) > 0.01 {
			t.Errorf("segment %s is %.3f s long, want 2", s.Name, s.Seconds)
		}
		if i > 0 && s.Start.Sub(rr.segs[i-1].End()).Abs() > time.Millisecond*10 {
			t.Errorf("gap before %s", s.Name)
		}
	}
}

// TestRecordSizeCap records 20 s into a cap of a fraction of that, and
// watches the directory all along: it never holds more than the cap.
func TestRecordSizeCap(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	const maxBytes = 400 << 10
	cfg := Config{Dir: t.TempDir(), Segment: time.Second, MaxBytes: maxBytes}
	rr := start(t, cfg, f)
	var peak atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			peak.Store(max(peak.Load(), dirBytes(t, rr.dir)))
			select {
			case <-stop:
				return
			default:
				time.Sleep(200 * time.Microsecond)
			}
		}
	}()
	f.publish(20)
	rr.caughtUp(t, f)
	rr.stop()
	close(stop)
	<-watched
	st := rr.Status()
	t.Logf("peak %d bytes of %d; %d segments kept (%d bytes), %d deleted", peak.Load(), maxBytes, st.Segments, st.Bytes, st.Deleted)
	if peak.Load() > maxBytes || st.Bytes > maxBytes {
		t.Errorf("directory reached %d bytes, cap %d", peak.Load(), maxBytes)
	}
	if st.Deleted == 0 || st.Dropped != 0 {
		t.Errorf("status %+v", st)
	}
	// What is left is the newest, unbroken, up to the end.
	total := checkSegments(t, rr.Recorder, 30)
	last := rr.segs[len(rr.segs)-1]
	if end := f.t.Add(-time.Second / 30); last.End().Sub(end).Abs() > 50*time.Millisecond {
		t.Errorf("last segment ends at %v, the feed at %v", last.End(), end)
	}
	if total < 2 {
		t.Errorf("only %.1f s kept", total)
	}
}

func TestRecordMaxAge(t *testing.T) {
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	cfg := Config{Dir: t.TempDir(), Segment: time.Second, MaxAge: 3 * time.Second}
	rr := start(t, cfg, f)
	f.publish(10)
	rr.caughtUp(t, f)
	rr.stop()
	oldest := rr.segs[0]
	if end := f.t; end.Sub(oldest.End()) > 3*time.Second+time.Second {
		t.Errorf("oldest segment ended %v before the feed", end.Sub(oldest.End()))
	}
	if rr.Status().Deleted < 5 {
		t.Errorf("status %+v", rr.Status())
	}
}

// TestRecordDiskFull lowers the free space under MinFree while recording:
// the recorder closes its segment, pauses and says why, writes nothing,
// and resumes at a keyframe once space is back.
func TestRecordDiskFull(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	var free atomic.Int64
	free.Store(1 << 40)
	cfg := Config{Dir: t.TempDir(), Segment: 10 * time.Second, MinFree: 100 << 20}
	rr := start(t, cfg, f, func(r *Recorder) {
		r.free = func(string) (int64, error) { return free.Load(), nil }
		r.retry = 50 * time.Millisecond
	})
	f.publish(2)
	rr.caughtUp(t, f)
	free.Store(50 << 20)
	f.publish(1.5)
	rr.caughtUp(t, f)
	st := rr.Status()
	if st.State != StatePaused || st.Reason != "record: free space is under the minimum: 50 MiB free, 100 MiB kept free" {
		t.Errorf("status %+v", st)
	}
	if st.Segments != 1 || rr.cur != nil {
		t.Errorf("%d segments, current %v: the segment was not closed", st.Segments, rr.cur)
	}
	size := dirBytes(t, rr.dir)
	f.publish(1.5)
	rr.caughtUp(t, f)
	if n := dirBytes(t, rr.dir); n != size {
		t.Errorf("wrote %d bytes while paused", n-size)
	}
	free.Store(1 << 40)
	time.Sleep(60 * time.Millisecond)
	f.publish(2.5)
	rr.caughtUp(t, f)
	if st := rr.Status(); st.State != StateRecording {
		t.Errorf("after space is back: %+v", st)
	}
	rr.stop()
	if len(rr.segs) != 2 {
		t.Fatalf("segments %v", rr.segs)
	}
	checkSegments(t, rr.Recorder, 30)
}
