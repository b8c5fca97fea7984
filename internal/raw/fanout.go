package raw

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
)

// A raw viewer on a bare connection (TCP, unix socket, HTTP/1 taken over
// from net/http) that keeps up is written to by its feed's hub.Fanout,
// with one non-blocking write(2) per access unit and no wake-up of its own
// goroutine. When its socket cannot take a whole unit (EAGAIN, a partial
// write), it goes back to its goroutine with the rest of the unit and is
// served as before: blocking writes under the write timeout, skips to a
// keyframe when it falls behind, until it is at the live edge again.

// bareViewer is one viewer served through a fan-out.
type bareViewer struct {
	sub *hub.Sub
	tw  *hub.TryWriter // the fan-out's non-blocking write
	obs Observer
	hb  handBack // what push left for the viewer's goroutine
}

// handBack is what a viewer's goroutine gets back with its Sub: the unit
// the fan-out could not write whole and how much of it went, or the error
// that ended the viewer.
type handBack struct {
	f   hub.Frame
	off int
	err error
}

// push writes v's units up to the live edge without blocking (see
// hub.Fanout). It returns false, with v.hb set, when the viewer has to go
// back to its goroutine: a unit did not go whole, a write failed, or the
// hub closed.
func (v *bareViewer) push() bool {
	for {
		f, more, err := v.sub.TryNext()
		if err != nil {
			v.hb = handBack{err: err}
			return false
		}
		if !more {
			return true
		}
		if v.obs != nil {
			v.obs.ObserveLag(time.Since(f.Received))
		}
		n, err := v.tw.Write(f.Data)
		if err != nil || n < len(f.Data) {
			v.hb = handBack{f: f, off: n, err: err}
			return false
		}
		if v.obs != nil {
			v.obs.ObserveIngestToSend(time.Since(f.Received))
		}
	}
}

// serveFanout streams sub to conn through the fan-out while the viewer keeps
// up, and with blocking writes from this goroutine while it does not,
// until ctx ends, the hub closes or a write fails (see Serve, whose
// semantics it keeps).
func serveFanout(ctx context.Context, fo *hub.Fanout, sub *hub.Sub, conn net.Conn, rc syscall.RawConn, timeout time.Duration, obs Observer) error {
	timeout = writeTimeout(timeout)
	v := &bareViewer{sub: sub, tw: hub.NewTryWriter(rc), obs: obs}
	p := hub.NewPusher(v.push)
	// The fan-out's writes do not block, and would fail once a deadline
	// has passed: none is in force while it holds the viewer (a caller's,
	// for the response head, included).
	var armed time.Time
	_ = conn.SetWriteDeadline(armed)
	writeAll := func(f hub.Frame, off int) error {
		now := time.Now()
		if armed.Sub(now) < timeout*2/3 {
			armed = now.Add(timeout)
			_ = conn.SetWriteDeadline(armed)
		}
		if _, err := conn.Write(f.Data[off:]); err != nil {
			return err
		}
		if obs != nil {
			obs.ObserveIngestToSend(time.Since(f.Received))
		}
		return nil
	}
	for {
		// On its own: up to the live edge.
		for {
			f, ok, err := sub.TryNext()
			if err != nil {
				return ended(ctx, err)
			}
			if !ok {
				break
			}
			if obs != nil {
				obs.ObserveLag(time.Since(f.Received))
			}
			if err := writeAll(f, 0); err != nil {
				return err
			}
		}
		if !armed.IsZero() {
			armed = time.Time{}
			_ = conn.SetWriteDeadline(armed)
		}
		if !fo.Wait(ctx, p) {
			return nil
		}
		hb := v.hb
		v.hb = handBack{}
		if hb.err != nil {
			return ended(ctx, hb.err)
		}
		if err := writeAll(hb.f, hb.off); err != nil {
			return err
		}
	}
}

// ended maps the error that ended a viewer as Serve does: the hub closing
// or the viewer's context ending is a normal end.
func ended(ctx context.Context, err error) error {
	if errors.Is(err, hub.ErrClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}
