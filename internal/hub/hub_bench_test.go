package hub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// BenchmarkFanout publishes access units to N viewers that each read every
// one, as at 30 fps where every viewer keeps up. ns/op is per access unit
// (for all viewers together); allocs/op must be 0: nothing is copied or
// allocated per unit or per viewer.
func BenchmarkFanout(b *testing.B) {
	for _, viewers := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			h := New(Config{MaxBytes: 1 << 30, LagBudget: time.Hour})
			aus := make([]*h264.AccessUnit, 256)
			data := make([]byte, 8000) // ~2 Mbps at 30 fps
			start := time.Now()
			for i := range aus {
				aus[i] = &h264.AccessUnit{Data: data, Keyframe: i%30 == 0, Received: start}
			}
			ctx, cancel := context.WithCancel(context.Background())
			var read atomic.Int64
			var wg sync.WaitGroup
			for range viewers {
				s := h.Subscribe(SubOptions{Output: "bench", Join: ptr(JoinKeyframe)})
				wg.Go(func() {
					defer s.Close()
					for {
						if _, err := s.Next(ctx); err != nil {
							return
						}
						read.Add(1)
					}
				})
			}
			// Start every viewer streaming before the clock runs.
			h.Publish(aus[0])
			for read.Load() < int64(viewers) {
				time.Sleep(50 * time.Microsecond)
			}
			read.Store(0)
			const batch = 64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Publish(aus[(i+1)%len(aus)])
				if i%batch == batch-1 || i == b.N-1 {
					want := int64(i+1) * int64(viewers)
					for read.Load() < want {
						time.Sleep(20 * time.Microsecond)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(viewers), "ns/unit/viewer")
			cancel()
			wg.Wait()
		})
	}
}

// BenchmarkPublish is the writer alone with 1000 idle viewers: the cost the
// camera path pays per access unit, whatever the viewers do.
func BenchmarkPublish(b *testing.B) {
	h := New(Config{})
	for range 1000 {
		s := h.Subscribe(SubOptions{})
		defer s.Close()
	}
	au := &h264.AccessUnit{Data: make([]byte, 8000), Received: time.Now()}
	key := &h264.AccessUnit{Data: make([]byte, 8000), Keyframe: true, Received: time.Now()}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%30 == 0 {
			h.Publish(key)
		} else {
			h.Publish(au)
		}
	}
}
