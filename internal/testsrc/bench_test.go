package testsrc

import (
	"fmt"
	"testing"
)

// BenchmarkNext times one frame: drawing it, comparing it with the last
// one and coding it. "P" keeps the generator from ever reaching an IDR;
// "IDR" makes every frame one.
func BenchmarkNext(b *testing.B) {
	for _, size := range []struct{ w, h int }{{640, 480}, {1920, 1080}} {
		for _, kind := range []string{"P", "IDR"} {
			b.Run(fmt.Sprintf("%dx%d/%s", size.w, size.h, kind), func(b *testing.B) {
				cfg := Config{Width: size.w, Height: size.h, Intra: MaxIntra}
				if kind == "IDR" {
					cfg.Intra = 1
				}
				g, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				g.Next(frameTime(0, 30)) // the first frame is always an IDR
				b.ReportAllocs()
				bytes := 0
				i := 1
				for b.Loop() {
					if kind == "P" && g.gop >= MaxIntra-1 {
						g.gop = 1
					}
					nalus, _ := g.Next(frameTime(i, 30))
					for _, n := range nalus {
						bytes += len(n)
					}
					i++
				}
				b.ReportMetric(float64(bytes)/float64(i-1), "bytes/frame")
			})
		}
	}
}
