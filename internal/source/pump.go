package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// idleGap is how long the input must pause after a chunk before the sink
// is told it is idle: the time added to every frame of an encoder that
// writes each frame in one write. It only needs to be longer than the
// gaps between the reads of one write, which are microseconds; the
// parser ends an access unit at a pause only once the input has shown
// that it pauses between frames and never inside one (h264.Parser.Pause),
// so a longer pause inside a frame cannot cut it.
const idleGap = 500 * time.Microsecond

// pipeSize is the pipe buffer asked for on a pipe input (F_SETPIPE_SZ; 1
// MiB is Linux's default pipe-max-size). A write that fits is copied into
// the pipe at once, so the reader never sees part of it and then a pause:
// with the 64 KiB default, a 1080p keyframe written in one write reaches
// camfeed in pieces, as fast as the encoder's process is scheduled.
const pipeSize = 1 << 20

// deadliner is what os.File (pipes, FIFOs) and net.Conn offer.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// pump copies r to sink until r fails or ctx ends, and tells the sink
// when the input pauses (sink.Idle), so that an access unit can go out as
// soon as its last byte is read instead of when the next one starts (one
// frame interval sooner).
//
// A pause is a read that leaves nothing waiting in the pipe or socket
// (FIONREAD is 0 right after it): no delay at all. Where the kernel
// cannot say (outside Linux), it is idleGap without data, watched with a
// read deadline when r has them.
func pump(ctx context.Context, r io.Reader, sink Sink) error {
	buf := make([]byte, 256<<10)
	growPipe(r)
	waitingBytes := queued(r)
	d, canIdle := r.(deadliner)
	if waitingBytes != nil {
		canIdle = false
	} else if canIdle && d.SetReadDeadline(time.Time{}) != nil {
		canIdle = false // e.g. stdin on a terminal or a regular file
	}
	waiting := false // a deadline is set: data came, watching for a pause
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := sink.Write(buf[:n]); werr != nil {
				return werr
			}
			if waitingBytes != nil {
				if k, ok := waitingBytes(); ok && k == 0 {
					sink.Idle()
				}
				continue
			}
			// The deadline moves with every chunk: Go fails a read whose
			// deadline has passed even when data is waiting.
			if canIdle {
				waiting = d.SetReadDeadline(time.Now().Add(idleGap)) == nil
			}
			continue
		}
		if err == nil {
			continue
		}
		if waiting && errors.Is(err, os.ErrDeadlineExceeded) {
			sink.Idle()
			waiting = false
			if err := d.SetReadDeadline(time.Time{}); err != nil {
				canIdle = false
			}
			// A cancel that ends reads with a deadline (Stdin) may have
			// set it just before: look again, or the read would block.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			sink.Idle()
			return ErrEnded
		}
		return fmt.Errorf("read: %w", err)
	}
}
