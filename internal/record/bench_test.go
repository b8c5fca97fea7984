package record

import (
	"os"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// BenchmarkRecord measures the recorder's cost per frame of a 1280x720,
// 30 fps, 1 s GOP feed: AVCC conversion, fMP4 muxing and the write to a
// segment file (page cache; no fsync but at segment ends), bounds checks
// included. Units are made up front, so only the recorder is measured.
func BenchmarkRecord(b *testing.B) {
	g, err := testsrc.New(testsrc.Config{Width: 1280, Height: 720, FPS: 30, Intra: 30})
	if err != nil {
		b.Fatal(err)
	}
	p := h264.NewParser(h264.ParserConfig{})
	const n = 300
	units := make([]*h264.AccessUnit, 0, n)
	t0 := time.Now()
	for i := range n {
		ts := t0.Add(time.Duration(i) * time.Second / 30)
		nalus, _ := g.Next(ts)
		p.WriteAU(nalus, ts, func(au *h264.AccessUnit) { units = append(units, au) })
	}
	var bytes int
	for _, au := range units {
		bytes += au.Size()
	}
	r := New(Config{Dir: b.TempDir(), Segment: 10 * time.Second}, "cam", hub.New(hub.Config{}), nil)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := r.recover(); err != nil {
		b.Fatal(err)
	}
	w := &writer{r: r}
	b.SetBytes(int64(bytes / n))
	b.ReportAllocs()
	i, shift := 0, time.Duration(0)
	for b.Loop() {
		au := units[i]
		if i == 0 && shift > 0 {
			// Replay the units later in time, as a new stretch of feed.
			b.StopTimer()
			for j, u := range units {
				c := *u
				c.Received = u.Received.Add(shift)
				units[j] = &c
			}
			au = units[0]
			b.StartTimer()
		}
		w.unit(hub.Frame{AccessUnit: au})
		i++
		if i == n {
			i, shift = 0, shift+n*time.Second/30
		}
	}
	b.StopTimer()
	w.finish(nil)
}
