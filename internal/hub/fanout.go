package hub

import (
	"context"
	"slices"
	"sync"
)

// A viewer served by its own goroutine costs a wake-up per access unit:
// the hub's send, the select, the scheduler. At 100 viewers and 30 fps
// that is 3,000 a second, and profiles of raw and RTSP viewers showed it
// at a quarter of the cost of the write itself. A Fanout serves the
// viewers of one hub that keep up from one goroutine instead, woken once
// per unit (Notify): it calls each one's push function, which takes the
// viewer's units with TryNext and writes them without blocking. A viewer
// that cannot take a unit at once goes back to its own goroutine, which
// serves it as before (blocking writes, skips to a keyframe) until it is
// at the live edge again. Each viewer keeps its own Sub, whichever
// goroutine holds it, so what it is sent and skipped does not change.

// Fanouts holds the running Fanouts of one output, one per hub; a Fanout
// stops when its last viewer leaves. The zero value is ready to use.
type Fanouts struct {
	mu sync.Mutex
	m  map[*Hub]*Fanout
}

// Fanout calls the push functions of the viewers it holds whenever its
// hub has new units.
type Fanout struct {
	fs     *Fanouts
	h      *Hub
	wake   chan struct{}
	users  int // viewers using it, held or not; guarded by fs.mu
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	held []*Pusher
}

// Pusher is one viewer of a Fanout.
type Pusher struct {
	push func() bool
	back chan struct{}
}

// NewPusher returns a viewer for a Fanout. push is called from the
// Fanout's goroutine, with the viewer's Sub and state its own: it serves
// the viewer up to the live edge without blocking and returns true, or
// returns false to go back to the viewer's goroutine (a unit that did not
// go whole, an error), having left there what that goroutine needs.
func NewPusher(push func() bool) *Pusher {
	return &Pusher{push: push, back: make(chan struct{}, 1)}
}

// Join returns h's Fanout, starting it if needed; the caller must Leave.
func (fs *Fanouts) Join(h *Hub) *Fanout {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m == nil {
		fs.m = map[*Hub]*Fanout{}
	}
	fo := fs.m[h]
	if fo == nil {
		ctx, cancel := context.WithCancel(context.Background())
		fo = &Fanout{fs: fs, h: h, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
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

// Running reports how many Fanouts are running (tests).
func (fs *Fanouts) Running() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.m)
}

// Leave ends a viewer's use of fo; the last one stops it and waits for it.
func (fo *Fanout) Leave() {
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

func (fo *Fanout) run(ctx context.Context) {
	for {
		select {
		case <-fo.wake:
		case <-ctx.Done():
			return
		}
		fo.mu.Lock()
		kept := fo.held[:0]
		for _, p := range fo.held {
			if !p.push() {
				p.back <- struct{}{} // never blocks: one hand-back per Wait, and room for one
				continue
			}
			kept = append(kept, p)
		}
		clear(fo.held[len(kept):])
		fo.held = kept
		fo.mu.Unlock()
	}
}

// Wait hands p's viewer to the Fanout, which pushes its units from then
// on, and waits until push returns false: Wait then returns true, and the
// viewer is its caller's again, with what push left it. It returns false
// when ctx ends first, once the Fanout has let go of the viewer (push did
// not return false: nothing is left to handle).
func (fo *Fanout) Wait(ctx context.Context, p *Pusher) bool {
	fo.mu.Lock()
	fo.held = append(fo.held, p)
	fo.mu.Unlock()
	// Look at once, in case a unit came while the viewer was on its own.
	select {
	case fo.wake <- struct{}{}:
	default:
	}
	select {
	case <-p.back:
		return true
	case <-ctx.Done():
	}
	fo.mu.Lock()
	i := slices.Index(fo.held, p)
	if i >= 0 {
		fo.held = slices.Delete(fo.held, i, i+1)
	}
	fo.mu.Unlock()
	if i < 0 {
		<-p.back // push returned false as ctx ended
		return true
	}
	return false
}
