//go:build !race

package clip

const raceEnabled = false
