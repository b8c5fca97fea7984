//go:build !race

package hub

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// TestFanoutAllocs asserts what docs/PERFORMANCE.md claims of the hub: a
// unit reaches every viewer with no allocation, per unit or per viewer.
// (Not under -race, which changes allocation counts; .ci/run runs
// `go test -run Alloc ./...` for these.)
func TestFanoutAllocs(t *testing.T) {
	h := New(Config{MaxBytes: 1 << 20, LagBudget: time.Hour})
	defer h.Close()
	subs := make([]*Sub, 10)
	for i := range subs {
		subs[i] = h.Subscribe(SubOptions{Output: "alloc", Join: ptr(JoinKeyframe)})
		defer subs[i].Close()
	}
	data := make([]byte, 8000)
	aus := make([]*h264.AccessUnit, 60)
	start := time.Now()
	for i := range aus {
		aus[i] = &h264.AccessUnit{Data: data, Keyframe: i%30 == 0, Received: start}
	}
	i := 0
	unit := func() {
		h.Publish(aus[i%len(aus)])
		i++
		for _, s := range subs {
			if _, ok, err := s.TryNext(); !ok || err != nil {
				t.Fatalf("viewer did not get unit %d: %v", i, err)
			}
		}
	}
	for range 1000 { // warm up: the ring grows to its cap
		unit()
	}
	if n := testing.AllocsPerRun(1000, unit); n != 0 {
		t.Errorf("%v allocations per unit for 10 viewers, want 0", n)
	}
}

// TestTryWriterAllocs: a fan-out's non-blocking write allocates nothing,
// whether the socket takes the bytes or is full.
func TestTryWriterAllocs(t *testing.T) {
	a, b, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	rc, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := NewTryWriter(rc)
	buf := make([]byte, 4<<10)
	if n := testing.AllocsPerRun(2000, func() { _, _ = w.Write(buf) }); n != 0 {
		t.Errorf("%.1f allocations a write, want 0", n)
	}
}
