// Package source holds the things that make H.264: a camera process, any
// command, a file or FIFO, stdin, a TCP publisher, an RTSP camera, and the
// built-in test pattern. A Source only produces bytes or access units; the
// feed supervises it (restart with backoff, stall watchdog) and parses what
// it produces into the hub.
package source

import (
	"context"
	"errors"
)

// Sink receives what a source produces. The feed implements it.
type Sink interface {
	// Write takes Annex-B H.264 bytes in any chunking (byte-stream sources).
	Write(p []byte) (int, error)
	// Idle tells the sink that the input paused after the bytes written so
	// far: the last access unit may be complete (see h264.Parser.Flush).
	Idle()
	// WriteAU takes one complete access unit, NAL units without start
	// codes (framed sources: the test pattern, RTP). The slices are only
	// read during the call.
	WriteAU(nalus [][]byte)
}

// InputBreaker is what a Sink may also offer: NewInput says that the
// bytes written so far end one input and the next ones begin another (a
// tcp-listen publisher left; the next one connects), so that nothing of
// the old input is glued to the new one and the new one is parsed from
// scratch (see h264.Parser.NewInput). The feed's sink implements it.
type InputBreaker interface {
	NewInput()
}

// Source makes H.264 for one feed.
type Source interface {
	// Run produces into sink until ctx ends or the source fails. It
	// returns ctx.Err() after a cancel, and otherwise an error saying, in
	// words a person understands, why the source stopped.
	Run(ctx context.Context, sink Sink) error
	// String describes the source for logs and the status page.
	String() string
}

// KeyframeRequester is a source that can make a keyframe on demand: a
// viewer that lost a picture (a WebRTC PLI or FIR) is live again within a
// frame instead of a GOP. The test pattern can; rpicam-vid cannot be
// asked while it runs, so a camera feed's viewers wait for its next
// keyframe. RequestKeyframe must be cheap and safe from any goroutine;
// the source rate-limits it, since every viewer of the feed may ask.
type KeyframeRequester interface {
	RequestKeyframe()
}

// ErrEnded is returned by a source whose input ended normally (a file
// without loop, a publisher that hung up). The feed restarts it as usual.
var ErrEnded = errors.New("source: input ended")
