//go:build !race

package h264

import (
	"os"
	"testing"
)

// TestParserAllocs asserts docs/PERFORMANCE.md's claim for the parser:
// access units are carved from 256 KiB slabs, so steady-state parsing
// allocates only a new slab now and then, never per unit. (Not under
// -race; .ci/run runs `go test -run Alloc ./...`.)
func TestParserAllocs(t *testing.T) {
	data, err := os.ReadFile("testdata/high.h264")
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(ParserConfig{StampIngest: true})
	units := 0
	emit := func(*AccessUnit) { units++ }
	pass := func() {
		for off := 0; off < len(data); off += 4096 {
			p.Write(data[off:min(off+4096, len(data))], now, emit)
		}
	}
	for range 100 { // warm up
		pass()
	}
	units = 0
	const runs = 200
	n := testing.AllocsPerRun(runs, pass)
	perUnit := n * runs / float64(units)
	// A slab holds 256 KiB: at most one new one per 256 KiB parsed, plus
	// its bookkeeping.
	budget := 2 * (float64(len(data))/(256<<10) + 1)
	t.Logf("%.2f allocations per %d-byte pass, %.3f per unit", n, len(data), perUnit)
	if n > budget || perUnit >= 0.5 {
		t.Errorf("%.2f allocations per pass (%.3f per unit), want at most %.1f per pass: the slabs", n, perUnit, budget)
	}
}

// TestTimeSEIAllocs: reading the time stamp of an SEI, also behind kilobytes
// of someone else's payload, allocates nothing (it runs for every SEI).
func TestTimeSEIAllocs(t *testing.T) {
	n := timeAfterPadding(now, 10_000)
	if a := testing.AllocsPerRun(100, func() { _, _, _ = ParseTimeSEI(n) }); a != 0 {
		t.Errorf("%v allocations per ParseTimeSEI, want 0", a)
	}
}
