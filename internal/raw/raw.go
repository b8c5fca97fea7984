// Package raw serves a feed as a plain Annex-B H.264 byte stream: over HTTP
// (/stream.h264), a TCP listener, a unix socket per feed, and a FIFO. It is
// what ffplay, VLC, mpv, nc and OpenCV read, and what the seed's Python
// server did for one viewer.
package raw

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
)

// Observe gives the Observer for one viewer of feed on output, or nil.
type Observe func(feed, output string) Observer

func (o Observe) get(feed, output string) Observer {
	if o == nil {
		return nil
	}
	return o(feed, output)
}

// Observer gets per-unit timings for the metrics (metrics.Viewer is one).
type Observer interface {
	ObserveLag(time.Duration)
	ObserveIngestToSend(time.Duration)
}

// DefaultWriteTimeout bounds one write when an output's WriteTimeout is
// zero; camfeed sets limits.write_timeout. A viewer that takes longer than
// this to accept a frame's bytes has stopped reading; it is dropped, which
// costs the camera and other viewers nothing in the meantime.
const DefaultWriteTimeout = 10 * time.Second

func writeTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultWriteTimeout
	}
	return d
}

// Serve copies the viewer's access units to w until ctx ends, the hub
// closes or a write fails. Every write is a whole access unit, shared with
// every other viewer (no copy): on a bare connection that is one system
// call per picture, the least a raw viewer can cost. flush, if set, runs
// after each one; deadline, if set, keeps a write deadline of timeout (0:
// DefaultWriteTimeout) armed. The deadline is re-armed only once a third
// of it has passed, not before every write: arming it is a timer update
// in the runtime, and at 30 frames a second for every viewer that showed
// in profiles. A stalled write therefore fails after between two thirds
// of timeout and timeout.
func Serve(ctx context.Context, sub *hub.Sub, w io.Writer, flush func() error, deadline func(time.Time) error, timeout time.Duration, obs Observer) error {
	timeout = writeTimeout(timeout)
	var armed time.Time // the write deadline in force
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, hub.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		if obs != nil {
			obs.ObserveLag(now.Sub(f.Received))
		}
		if deadline != nil && armed.Sub(now) < timeout*2/3 {
			armed = now.Add(timeout)
			_ = deadline(armed)
		}
		if _, err := w.Write(f.Data); err != nil {
			return err
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		if obs != nil {
			obs.ObserveIngestToSend(time.Since(f.Received))
		}
	}
}
