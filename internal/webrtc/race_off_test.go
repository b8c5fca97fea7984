//go:build !race

package webrtc

const raceSlowdown = 1
