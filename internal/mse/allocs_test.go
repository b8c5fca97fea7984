//go:build !race

package mse

import (
	"testing"

	"github.com/camfeed/camfeed/internal/hub"
)

// TestSharedFragmentAllocs: a viewer sending a fragment another viewer
// already had made allocates nothing (its moof copy is reused).
func TestSharedFragmentAllocs(t *testing.T) {
	aus, params := units(t, 2)
	fr := newFragmenter(params.Info.FPS)
	f := hub.Frame{AccessUnit: aus[1], Seq: 1}
	x, err := fr.get(f)
	if err != nil {
		t.Fatal(err)
	}
	var tl timeline
	tl.header(x)
	if n := testing.AllocsPerRun(100, func() {
		x, _ := fr.get(f)
		tl.header(x)
	}); n != 0 {
		t.Errorf("%.1f allocations per viewer per fragment, want 0", n)
	}
}
