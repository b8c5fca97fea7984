package srt

import (
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/push/srt/srttest"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// BenchmarkWriteUnit pushes one GOP of the test pattern (320x240, 30
// units, a 115 KB keyframe) round and round to srt-live-transmit on
// loopback: MPEG-TS muxing, gosrt's packets and the UDP sends, per unit.
func BenchmarkWriteUnit(b *testing.B) {
	units, params := testfeed.Pattern(b, small, 30)
	r := srttest.Start(b, "")
	w, err := dialTest(b, r.URL(""), params, 3*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	testfeed.BenchWriteUnit(b, w, units, small.FPS)
}

// TestMeasureCPU reports this process's CPU while it pushes 10 s of the
// 640x480, 30 fps test pattern in real time to srt-live-transmit (a
// separate process, not counted): the cost of one SRT push target.
//
//	CAMFEED_PERF=1 go test -run TestMeasureCPU -v ./internal/push/srt
func TestMeasureCPU(t *testing.T) {
	testsupport.Measurement(t)
	units, params := testfeed.Pattern(t, testsrc.Config{FPS: 30}, 300)
	r := srttest.Start(t, "")
	w, err := dialTest(t, r.URL(""), params, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	bytes := 0
	for _, au := range units {
		bytes += len(au.Data)
	}
	start, cpu0 := time.Now(), cpuTime()
	testfeed.Push(t, w, units, 0, 30)
	wall, cpu := time.Since(start), cpuTime()-cpu0
	t.Logf("%d units, %.1f Mbit/s: %v CPU in %v wall = %.1f%% of one core",
		len(units), float64(bytes)*8/wall.Seconds()/1e6, cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
