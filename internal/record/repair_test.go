package record

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestRepairCut cuts a finished segment at many places, as a power cut
// can, and repairs it: what is listed is whole and plays, and what holds
// no fragment is gone.
func TestRepairCut(t *testing.T) {
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 10})
	src := start(t, Config{Dir: t.TempDir(), Segment: time.Hour}, f)
	f.publish(1.5)
	src.caughtUp(t, f)
	src.stop()
	seg := src.segs[0]
	data, err := os.ReadFile(filepath.Join(src.dir, seg.Name))
	if err != nil {
		t.Fatal(err)
	}
	init, frags, whole, err := scan(bytes.NewReader(data), int64(len(data)), nil)
	if err != nil || whole != int64(len(data)) || len(frags) != 5 {
		t.Fatalf("scan: %v, %d of %d bytes whole, %d fragments", err, whole, len(data), len(frags))
	}
	// Cut at every box boundary, a byte either side, and in the middle of
	// each fragment.
	cuts := []int64{0, 7, 8, int64(len(init)) - 1, int64(len(init)), int64(len(init)) + 1}
	for _, fi := range frags {
		end := fi.off + fi.size
		cuts = append(cuts, fi.off+fi.size/2, end-1, end, min(end+1, int64(len(data))))
	}
	for _, cut := range cuts {
		dir := t.TempDir()
		r := New(Config{Dir: dir}, "cam", f.h, nil)
		os.MkdirAll(r.dir, 0o755)
		part := seg.Start.UTC().Format(nameTime) + partExt
		os.WriteFile(filepath.Join(r.dir, part), data[:cut], 0o644)
		if err := r.recover(); err != nil {
			t.Fatal(err)
		}
		// The whole fragments before the cut are kept.
		var keep int64 = 0
		var n int
		for _, fi := range frags {
			if fi.off+fi.size <= cut {
				keep, n = fi.off+fi.size, n+1
			}
		}
		names := files(r.dir)
		switch {
		case n == 0:
			if len(names) != 0 || len(r.segs) != 0 {
				t.Errorf("cut at %d: %v left", cut, names)
			}
		case len(r.segs) != 1 || len(names) != 1 || r.segs[0].Bytes != keep:
			t.Errorf("cut at %d: %v, segments %+v, want %d bytes", cut, names, r.segs, keep)
		default:
			want := frags[n-1].base + frags[n-1].dur
			if got := r.segs[0].Seconds; int64(got*1000+0.5) != int64(float64(want)/90+0.5) {
				t.Errorf("cut at %d: %.3f s, want %d ticks", cut, got, want)
			}
			if n == 2 || n == len(frags) {
				testsupport.Decodes(t, filepath.Join(r.dir, names[0]))
			}
		}
	}
}

// TestRecoverBounds applies the bounds at start, to what an earlier run
// left: a smaller MaxBytes deletes the oldest.
func TestRecoverBounds(t *testing.T) {
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	dir := t.TempDir()
	rr := start(t, Config{Dir: dir, Segment: time.Second}, f)
	f.publish(6)
	rr.caughtUp(t, f)
	rr.stop()
	all := rr.segs
	os.WriteFile(filepath.Join(rr.dir, "notes.txt"), []byte("not a segment"), 0o644)
	r := New(Config{Dir: dir, MaxBytes: all[len(all)-1].Bytes + all[len(all)-2].Bytes}, "cam", f.h, nil)
	if err := r.recover(); err != nil {
		t.Fatal(err)
	}
	if len(r.segs) != 2 || r.segs[1].Name != all[len(all)-1].Name || r.segs[0].Name != all[len(all)-2].Name {
		t.Errorf("kept %v of %v", r.segs, all)
	}
	if _, err := os.Stat(filepath.Join(rr.dir, "notes.txt")); err != nil {
		t.Error("a file that is not a segment was touched")
	}
}
