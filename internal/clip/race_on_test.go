//go:build race

package clip

// raceEnabled: the race detector slows code several times over, so
// latency bounds are only checked without it.
const raceEnabled = true
