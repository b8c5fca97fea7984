//go:build !race

package testsrc

import "testing"

// TestNextAllocs asserts docs/PERFORMANCE.md's claim for the test pattern
// encoder: no allocation per frame once its buffers have grown. (Not
// under -race; .ci/run runs `go test -run Alloc ./...`.)
func TestNextAllocs(t *testing.T) {
	for _, intra := range []int{1, 600} {
		g, err := New(Config{Intra: intra})
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		next := func() { g.Next(frameTime(i, 30)); i++ }
		for range 40 { // warm up: buffers grow to the largest picture
			next()
		}
		if n := testing.AllocsPerRun(100, next); n != 0 {
			t.Errorf("intra %d: %v allocations per frame, want 0", intra, n)
		}
	}
}
