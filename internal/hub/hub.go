// Package hub holds one feed's recent access units in a bounded RAM ring and
// fans them out to any number of viewers.
//
// Invariants (see docs/ARCHITECTURE.md):
//   - One writer (Publish), many readers (Sub). The writer never waits for a
//     reader: it takes the lock for a few pointer moves and wakes readers
//     with non-blocking sends.
//   - Access units are shared and immutable; a viewer gets a pointer, never
//     a copy.
//   - Memory is bounded by Config.MaxBytes (the current GOP may take it up to
//     twice that, never more) and by a fixed cap on the number of units.
//   - Every viewer starts at a keyframe, and skips only to a keyframe, so no
//     viewer is ever sent a picture whose reference it did not get.
package hub

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// ErrClosed is returned by Sub.Next once the hub is closed.
var ErrClosed = errors.New("hub: feed closed")

// JoinPolicy says where a new viewer starts.
type JoinPolicy int

const (
	// JoinInstant sends the newest keyframe at once; when that keyframe is
	// older than the lag budget, the viewer then jumps to the next keyframe
	// rather than replaying the cached GOP. A picture in milliseconds, and
	// no backlog that a raw-stream player would keep for the whole session.
	JoinInstant JoinPolicy = iota
	// JoinKeyframe replays the cached GOP from the newest keyframe. Smooth
	// motion from the first frame, but a player that honours the frame rate
	// stays as far behind as the keyframe was old.
	JoinKeyframe
	// JoinNext waits for the next keyframe: zero backlog, but a blank
	// screen for up to one GOP.
	JoinNext
)

// ParseJoinPolicy parses "instant", "keyframe" or "next".
func ParseJoinPolicy(s string) (JoinPolicy, error) {
	switch s {
	case "instant", "":
		return JoinInstant, nil
	case "keyframe":
		return JoinKeyframe, nil
	case "next":
		return JoinNext, nil
	}
	return 0, errors.New(`join policy must be "instant", "keyframe" or "next"`)
}

func (p JoinPolicy) String() string {
	switch p {
	case JoinKeyframe:
		return "keyframe"
	case JoinNext:
		return "next"
	}
	return "instant"
}

// Defaults.
const (
	DefaultMaxBytes  = 8 << 20
	DefaultLagBudget = 500 * time.Millisecond
	// maxUnits caps the ring's length whatever the byte budget, so a stream
	// of tiny access units cannot grow the index without bound either.
	maxUnits = 1 << 15
)

// Config sets a hub's budget and viewer policy.
type Config struct {
	// MaxBytes is the RAM budget for access units. The current GOP is kept
	// even when it is larger, up to twice MaxBytes.
	MaxBytes int
	// Window, when set, also drops units older than this (the pre-roll).
	Window time.Duration
	// LagBudget is how far (in time) a viewer may fall behind the newest
	// unit before it is skipped to a keyframe.
	LagBudget time.Duration
	// Join is the default join policy for viewers.
	Join JoinPolicy
}

func (c *Config) setDefaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.LagBudget <= 0 {
		c.LagBudget = DefaultLagBudget
	}
}

type entry struct {
	au  *h264.AccessUnit
	seq uint64
}

// Hub is one feed's ring of access units and its viewers.
type Hub struct {
	cfg Config

	mu      sync.RWMutex
	ring    []entry // circular, len is a power of two
	tail    uint64  // seq of the oldest unit held
	head    uint64  // seq the next unit will get
	bytes   int
	lastKey uint64 // seq of the newest keyframe held; valid when hasKey
	hasKey  bool
	closed  bool
	epoch   uint64 // counts Resets: a viewer from an older epoch waits for a keyframe
	params  Params
	subs    []*Sub
	notify  []chan struct{} // see Notify
	stats   counters
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	cfg.setDefaults()
	return &Hub{cfg: cfg, ring: make([]entry, 64)}
}

// Config returns the hub's configuration, defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

func (h *Hub) at(seq uint64) *entry { return &h.ring[seq&uint64(len(h.ring)-1)] }

// Publish adds an access unit at the live edge. It never blocks on viewers.
// au must not be modified afterwards.
func (h *Hub) Publish(au *h264.AccessUnit) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if h.head-h.tail == uint64(len(h.ring)) {
		if len(h.ring) < maxUnits {
			h.grow()
		} else {
			h.evictOldest()
		}
	}
	seq := h.head
	*h.at(seq) = entry{au: au, seq: seq}
	h.head++
	h.bytes += au.Size()
	if au.Keyframe {
		h.noteParams(au)
		if h.hasKey {
			h.stats.gop = int(seq - h.lastKey)
		}
		h.lastKey, h.hasKey = seq, true
	}
	h.evict(au.Received)
	h.stats.published(au)
	subs, notify := h.subs, h.notify
	h.mu.Unlock()
	wake(subs, notify)
}

// wake tells every viewer and every Notify channel that the hub changed,
// without waiting for any.
func wake(subs []*Sub, notify []chan struct{}) {
	for _, s := range subs {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	for _, c := range notify {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Notify makes the hub send to c, without waiting, whenever a unit is
// published and when it closes, until stop is called. It is for an output
// that serves many viewers' Subs from one goroutine (raw's fan-out): it
// then calls their TryNext. c should have a buffer of one.
func (h *Hub) Notify(c chan struct{}) (stop func()) {
	h.mu.Lock()
	h.notify = append(slices.Clip(h.notify), c)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if i := slices.Index(h.notify, c); i >= 0 {
			h.notify = slices.Delete(slices.Clone(h.notify), i, i+1)
		}
	}
}

func (h *Hub) grow() {
	n := make([]entry, len(h.ring)*2)
	for seq := h.tail; seq < h.head; seq++ {
		n[seq&uint64(len(n)-1)] = *h.at(seq)
	}
	h.ring = n
}

// evict drops the oldest units while over budget, keeping the current GOP
// unless it alone passes twice the budget.
func (h *Hub) evict(now time.Time) {
	for h.tail < h.head {
		e := h.at(h.tail)
		over := h.bytes > h.cfg.MaxBytes ||
			(h.cfg.Window > 0 && now.Sub(e.au.Received) > h.cfg.Window)
		if !over {
			return
		}
		if h.hasKey && h.tail >= h.lastKey && h.bytes <= 2*h.cfg.MaxBytes {
			return // the current GOP stays, so viewers can always join
		}
		h.evictOldest()
	}
}

func (h *Hub) evictOldest() {
	e := h.at(h.tail)
	h.bytes -= e.au.Size()
	*e = entry{}
	h.tail++
	if h.hasKey && h.lastKey < h.tail && !h.closed {
		h.hasKey = false // the GOP outgrew twice the budget: joiners wait for the next keyframe
		h.stats.gopOverflows++
	}
}

// Close wakes every viewer with ErrClosed and drops all units.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	subs, notify := h.subs, h.notify
	for h.tail < h.head {
		h.evictOldest()
	}
	h.mu.Unlock()
	wake(subs, notify)
}

// Reset drops the cached units, for a source that restarted with another
// stream: no viewer may join on a keyframe of the old one. Viewers stay
// subscribed and continue at the new stream's first keyframe.
func (h *Hub) Reset() {
	h.mu.Lock()
	h.hasKey = false
	h.epoch++
	for h.tail < h.head {
		h.evictOldest()
	}
	h.mu.Unlock()
}

// Params are the parameter sets of the newest keyframe, for outputs that
// describe the stream up front (RTSP SDP, fMP4 init, WebRTC fmtp).
type Params struct {
	SPS, PPS []byte
	Info     h264.Info
	// Gen changes whenever SPS or PPS change (a camera restarted in another
	// mode): descriptions made from an older Gen are stale.
	Gen uint64
}

// noteParams records the SPS/PPS of a keyframe. Called with h.mu held; the
// common case (unchanged) is two byte comparisons and no allocation.
func (h *Hub) noteParams(au *h264.AccessUnit) {
	var sps, pps []byte
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	if sps == nil || pps == nil || (bytes.Equal(sps, h.params.SPS) && bytes.Equal(pps, h.params.PPS)) {
		return
	}
	info, err := h264.ParseSPS(sps)
	if err != nil {
		return
	}
	h.params = Params{SPS: sps, PPS: pps, Info: info, Gen: h.params.Gen + 1}
}

// Params returns the newest keyframe's parameter sets; Gen is 0 before the
// first keyframe. The slices are shared and must not be modified.
func (h *Hub) Params() Params {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.params
}

// Since returns the units held from the last keyframe at or before from
// (or the oldest keyframe held, when from is older than the ring) up to the
// newest, for clips and snapshots. It copies pointers only; the units are
// shared and immutable. It returns nil when no keyframe is held.
func (h *Hub) Since(from time.Time) []*h264.AccessUnit {
	h.mu.RLock()
	defer h.mu.RUnlock()
	start, found := uint64(0), false
	for seq := h.tail; seq < h.head; seq++ {
		au := h.at(seq).au
		if !au.Keyframe {
			continue
		}
		if !found || !au.Received.After(from) {
			start, found = seq, true
		}
		if au.Received.After(from) {
			break
		}
	}
	if !found {
		return nil
	}
	out := make([]*h264.AccessUnit, 0, h.head-start)
	for seq := start; seq < h.head; seq++ {
		out = append(out, h.at(seq).au)
	}
	return out
}
