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
// is told it is idle. Encoders write a whole frame at once, so a pause
// this long means the frame is complete; 2 ms is far below a frame interval
// and far above the gap between two reads of one frame.
const idleGap = 2 * time.Millisecond

// deadliner is what os.File (pipes, FIFOs) and net.Conn offer.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// pump copies r to sink until r fails or ctx ends. When r supports read
// deadlines it detects pauses and calls sink.Idle, so an access unit goes
// out as soon as its last byte is read instead of when the next one
// starts (one frame interval sooner).
func pump(ctx context.Context, r io.Reader, sink Sink) error {
	buf := make([]byte, 256<<10)
	d, canIdle := r.(deadliner)
	if canIdle && d.SetReadDeadline(time.Time{}) != nil {
		canIdle = false // e.g. stdin on a terminal or a regular file
	}
	waiting := false // a deadline is set: data came, watching for a pause
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := sink.Write(buf[:n]); werr != nil {
				return werr
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
