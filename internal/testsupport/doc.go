// Package testsupport holds what camfeed's tests share: finding the real
// clients they drive (ffmpeg, ffprobe, GStreamer, Chromium), running and
// probing with them, the test pattern feeding a hub, loopback servers,
// goroutine-leak checks and a logger that writes to the test.
//
// Only tests import it. It never asserts a wall-clock figure: a test that
// waits does so with a generous functional timeout (see Patience), and
// timing claims live in benchmarks and the load tool (docs/PERFORMANCE.md).
package testsupport
