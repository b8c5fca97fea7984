package clip

import (
	"bufio"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkClip writes a clip of the last N seconds of a 30 fps 640x480
// feed from the ring: hub.Since, Plan and WriteMP4 to a discarding writer,
// through the same 32 KiB buffer as a download.
func BenchmarkClip(b *testing.B) {
	src := newSource(b, 30, 30)
	src.fill(31)
	for _, secs := range []int{1, 5, 30} {
		b.Run(fmt.Sprintf("%ds", secs), func(b *testing.B) {
			var n int64
			cw := &countWriter{}
			bw := bufio.NewWriterSize(cw, 32<<10)
			b.ReportAllocs()
			for b.Loop() {
				p, err := start(src.h, request{seconds: time.Duration(secs) * time.Second}, nil)
				if err != nil {
					b.Fatal(err)
				}
				c, err := p.finish(b.Context(), 0)
				if err != nil {
					b.Fatal(err)
				}
				cw.n = 0
				if err := c.WriteMP4(bw, nil); err != nil {
					b.Fatal(err)
				}
				bw.Flush()
				n = cw.n
			}
			b.SetBytes(n)
			b.ReportMetric(float64(n)/(1<<20), "MiB/clip")
		})
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
