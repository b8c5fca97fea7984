package hub

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// Frame is one access unit as handed to a viewer.
type Frame struct {
	*h264.AccessUnit
	// Seq numbers units in the feed; a gap means units were skipped.
	Seq uint64
	// Skipped is true when units before this one were skipped (slow
	// viewer, or join policy). It is always a keyframe then.
	Skipped bool
	// Catchup is true for units that were cached before the viewer joined,
	// so an output that paces by timestamps can compress them.
	Catchup bool
}

// SubOptions describe one viewer.
type SubOptions struct {
	// Output names the output, e.g. "http", "tcp", "rtsp", for stats.
	Output string
	// Join overrides the hub's join policy when set.
	Join *JoinPolicy
	// LagBudget overrides the hub's lag budget when positive.
	LagBudget time.Duration
}

type subState int

const (
	stateJoin    subState = iota // choose a start per the join policy
	stateWaitKey                 // wait for a keyframe with seq >= minKey
	stateStream                  // deliver from cursor
)

// Sub is one viewer's cursor into the hub. Its methods other than Stats
// must be called from one goroutine.
type Sub struct {
	h      *Hub
	opts   SubOptions
	policy JoinPolicy
	lag    time.Duration
	wake   chan struct{}

	state    subState
	cursor   uint64
	minKey   uint64
	joinSeq  uint64 // head when the viewer joined: older units are catch-up
	skipped  bool
	epoch    uint64
	instantK bool // JoinInstant: the keyframe was sent, jump to the next one

	sent  atomic.Uint64
	bytes atomic.Uint64
	skips atomic.Uint64
	start time.Time
}

// SubStats describe one viewer.
type SubStats struct {
	Output string
	Units  uint64
	Bytes  uint64
	Skips  uint64
	Since  time.Time
}

// Subscribe adds a viewer. Call Close when it leaves.
func (h *Hub) Subscribe(opts SubOptions) *Sub {
	s := &Sub{
		h: h, opts: opts, policy: h.cfg.Join, lag: h.cfg.LagBudget,
		wake: make(chan struct{}, 1), start: time.Now(),
	}
	if opts.Join != nil {
		s.policy = *opts.Join
	}
	if opts.LagBudget > 0 {
		s.lag = opts.LagBudget
	}
	h.mu.Lock()
	subs := make([]*Sub, len(h.subs), len(h.subs)+1)
	copy(subs, h.subs)
	h.subs = append(subs, s)
	s.joinSeq = h.head
	h.stats.viewerJoined(opts.Output)
	h.mu.Unlock()
	return s
}

// Close removes the viewer from the hub.
func (s *Sub) Close() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.subs {
		if x == s {
			subs := make([]*Sub, 0, len(h.subs)-1)
			subs = append(subs, h.subs[:i]...)
			h.subs = append(subs, h.subs[i+1:]...)
			h.stats.viewerLeft(s.opts.Output, s.bytes.Load(), s.skips.Load())
			return
		}
	}
}

// Stats returns the viewer's counters; safe from any goroutine.
func (s *Sub) Stats() SubStats {
	return SubStats{Output: s.opts.Output, Units: s.sent.Load(), Bytes: s.bytes.Load(), Skips: s.skips.Load(), Since: s.start}
}

// Next returns the next access unit for this viewer, waiting for one when
// the viewer is at the live edge. It returns ErrClosed when the hub closes,
// or ctx's error.
func (s *Sub) Next(ctx context.Context) (Frame, error) {
	for {
		f, ok, err := s.poll()
		if err != nil || ok {
			return f, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}
}

// TryNext is Next without waiting: ok is false at the live edge.
func (s *Sub) TryNext() (f Frame, ok bool, err error) { return s.poll() }

func (s *Sub) poll() (Frame, bool, error) {
	h := s.h
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return Frame{}, false, ErrClosed
	}
	if s.state == stateJoin {
		s.epoch = h.epoch
		s.join()
	}
	if s.epoch != h.epoch {
		// The source restarted: continue at the new stream's first keyframe.
		s.epoch = h.epoch
		s.state, s.minKey, s.skipped, s.instantK = stateWaitKey, h.tail, true, false
	}
	if s.state == stateWaitKey {
		if !h.hasKey || h.lastKey < s.minKey {
			return Frame{}, false, nil
		}
		s.cursor, s.state = h.lastKey, stateStream
	}
	if s.cursor < h.tail {
		// The ring moved on past this viewer (or the feed was reset).
		s.skipTo(h.tail)
		if s.state == stateWaitKey {
			return Frame{}, false, nil
		}
	}
	if s.cursor >= h.head {
		return Frame{}, false, nil
	}
	e := h.at(s.cursor)
	if s.cursor >= s.joinSeq && !s.instantK {
		newest := h.at(h.head - 1).au.Received
		if newest.Sub(e.au.Received) > s.lag && !(h.hasKey && h.lastKey == s.cursor) {
			s.skipTo(s.cursor + 1)
			if s.state == stateWaitKey {
				return Frame{}, false, nil
			}
			e = h.at(s.cursor)
		}
	}
	f := Frame{AccessUnit: e.au, Seq: e.seq, Skipped: s.skipped, Catchup: e.seq < s.joinSeq}
	s.skipped = false
	s.cursor++
	if s.instantK {
		// JoinInstant sent the cached keyframe; continue at the next one
		// rather than replay the rest of the old GOP.
		s.instantK = false
		s.state, s.minKey, s.skipped = stateWaitKey, s.cursor, true
	}
	s.sent.Add(1)
	s.bytes.Add(uint64(e.au.Size()))
	return f, true, nil
}

// join places a new viewer per its policy. Called with h.mu held.
func (s *Sub) join() {
	h := s.h
	switch {
	case s.policy == JoinNext || !h.hasKey:
		s.state, s.minKey = stateWaitKey, h.head
		if !h.hasKey {
			s.minKey = 0
		}
	case s.policy == JoinInstant:
		s.cursor, s.state = h.lastKey, stateStream
		// A fresh keyframe needs no jump: its GOP is still live.
		newest := h.at(h.head - 1).au.Received
		key := h.at(h.lastKey).au.Received
		s.instantK = newest.Sub(key) > s.lag/2
	default:
		s.cursor, s.state = h.lastKey, stateStream
	}
}

// skipTo moves a viewer that fell behind (or lost its place) forward to a
// keyframe at or after from: the newest one if it is ahead, else the next
// one to arrive. Called with h.mu held.
func (s *Sub) skipTo(from uint64) {
	h := s.h
	s.skips.Add(1)
	h.stats.skip()
	s.skipped = true
	if h.hasKey && h.lastKey >= from {
		s.cursor, s.state = h.lastKey, stateStream
		return
	}
	s.state, s.minKey = stateWaitKey, max(from, h.head)
}
