//go:build !linux

package rtsp

// Without Linux's UDP_SEGMENT every datagram is its own message.
const (
	gsoMaxSegments = 1
	gsoMaxBytes    = 0
	gsoAvailable   = false
)

func gsoControl(oob []byte, size int) []byte { return nil }

func gsoRefused(error) bool { return false }
