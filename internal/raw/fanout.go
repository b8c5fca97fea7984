package raw

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
)

// A raw viewer on a bare connection (TCP, unix socket, HTTP/1 taken over
// from net/http) costs one write(2) per access unit; waking its goroutine
// for each one cost a third as much again (at 100 viewers and 30 fps, 3,000
// park and unpark a second: the hub's wake-up, the select, the scheduler).
// So the viewers of a feed that keep up are written to by one goroutine,
// the fan-out: woken once per access unit, it writes the unit to each of
// them without blocking. A viewer whose socket cannot take the whole unit
// at once (EAGAIN, or a partial write) is handed back to its own
// goroutine with the rest of the unit, and is then served exactly as
// before: blocking writes under the write timeout, skips to a keyframe
// when it falls behind, until it is at the live edge again and rejoins
// the fan-out. The hub's contract does not change: each viewer has its
// own Sub, whoever holds it, so what a viewer is sent and skipped is the
// same.

// fanouts holds the running fan-outs of one output, one per hub; a
// fan-out stops when its last viewer leaves. The zero value is ready.
type fanouts struct {
	mu sync.Mutex
	m  map[*hub.Hub]*fanout
}

// fanout writes the access units of one hub to the viewers in fast.
type fanout struct {
	fs     *fanouts
	h      *hub.Hub
	wake   chan struct{}
	users  int // viewers using this fan-out, fast or not; guarded by fs.mu
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	fast []*bareViewer // viewers whose Sub the fan-out holds
}

// bareViewer is one viewer served through a fan-out.
type bareViewer struct {
	sub  *hub.Sub
	rc   syscall.RawConn
	obs  Observer
	back chan handBack // the fan-out hands the viewer back to its goroutine

	// The fan-out's non-blocking write: wbuf in, wn and werr out. The
	// function is made once, so that a write allocates nothing.
	wbuf  []byte
	wn    int
	werr  error
	write func(fd uintptr) bool
}

// handBack is what a viewer's goroutine gets back with its Sub: the unit
// the fan-out could not write whole and how much of it went, or the error
// that ended the viewer.
type handBack struct {
	f   hub.Frame
	off int
	err error
}

// join returns h's fan-out, starting it if needed; the caller must leave.
func (fs *fanouts) join(h *hub.Hub) *fanout {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m == nil {
		fs.m = map[*hub.Hub]*fanout{}
	}
	fo := fs.m[h]
	if fo == nil {
		ctx, cancel := context.WithCancel(context.Background())
		fo = &fanout{fs: fs, h: h, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
		stop := h.Notify(fo.wake)
		go func() {
			defer close(fo.done)
			defer stop()
			fo.run(ctx)
		}()
		fs.m[h] = fo
	}
	fo.users++
	return fo
}

// leave ends a viewer's use of fo; the last one stops it and waits for it.
func (fo *fanout) leave() {
	fs := fo.fs
	fs.mu.Lock()
	fo.users--
	last := fo.users == 0
	if last {
		delete(fs.m, fo.h)
	}
	fs.mu.Unlock()
	if last {
		fo.cancel()
		<-fo.done
	}
}

func (fo *fanout) run(ctx context.Context) {
	for {
		select {
		case <-fo.wake:
		case <-ctx.Done():
			return
		}
		fo.mu.Lock()
		kept := fo.fast[:0]
		for _, v := range fo.fast {
			if hb, ok := v.push(); !ok {
				v.back <- hb // never blocks: the viewer's goroutine waits for it, and it has room for one
				continue
			}
			kept = append(kept, v)
		}
		clear(fo.fast[len(kept):])
		fo.fast = kept
		fo.mu.Unlock()
	}
}

// add gives v's Sub to the fan-out, and has it look at once, in case a
// unit came while v was on its own.
func (fo *fanout) add(v *bareViewer) {
	fo.mu.Lock()
	fo.fast = append(fo.fast, v)
	fo.mu.Unlock()
	select {
	case fo.wake <- struct{}{}:
	default:
	}
}

// remove takes v out of the fan-out; false if the fan-out had already
// handed it back (then the hand-back is in v.back).
func (fo *fanout) remove(v *bareViewer) bool {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	for i, x := range fo.fast {
		if x == v {
			fo.fast = slices.Delete(fo.fast, i, i+1)
			return true
		}
	}
	return false
}

// push writes v's units up to the live edge without blocking. ok is false
// when the viewer has to go back to its goroutine: a unit did not go
// whole, a write failed, or the hub closed.
func (v *bareViewer) push() (hb handBack, ok bool) {
	for {
		f, more, err := v.sub.TryNext()
		if err != nil {
			return handBack{err: err}, false
		}
		if !more {
			return handBack{}, true
		}
		if v.obs != nil {
			v.obs.ObserveLag(time.Since(f.Received))
		}
		v.wbuf = f.Data
		err = v.rc.Write(v.write)
		v.wbuf = nil
		n := max(v.wn, 0)
		if err == nil && v.werr != nil && !errors.Is(v.werr, syscall.EAGAIN) && !errors.Is(v.werr, syscall.EINTR) {
			err = v.werr
		}
		if err != nil || n < len(f.Data) {
			return handBack{f: f, off: n, err: err}, false
		}
		if v.obs != nil {
			v.obs.ObserveIngestToSend(time.Since(f.Received))
		}
	}
}

// serve streams sub to conn through the fan-out while the viewer keeps
// up, and with blocking writes from this goroutine while it does not,
// until ctx ends, the hub closes or a write fails (see Serve, whose
// semantics it keeps).
func (fo *fanout) serve(ctx context.Context, sub *hub.Sub, conn net.Conn, rc syscall.RawConn, timeout time.Duration, obs Observer) error {
	timeout = writeTimeout(timeout)
	v := &bareViewer{sub: sub, rc: rc, obs: obs, back: make(chan handBack, 1)}
	v.write = func(fd uintptr) bool {
		v.wn, v.werr = syscall.Write(int(fd), v.wbuf)
		return true // never wait: a unit that does not go whole goes back to the viewer
	}
	var armed time.Time // the write deadline in force
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
			// The fan-out's writes do not block, and would fail once a
			// deadline set here has passed.
			armed = time.Time{}
			_ = conn.SetWriteDeadline(armed)
		}
		fo.add(v)
		var hb handBack
		select {
		case hb = <-v.back:
		case <-ctx.Done():
			if !fo.remove(v) {
				<-v.back
			}
			return nil
		}
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
