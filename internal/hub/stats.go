package hub

import (
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// counters are updated under h.mu (write lock) except where atomic.
type counters struct {
	units, keyframes, bytesIn uint64
	lastUnit                  time.Time
	gopOverflows              uint64
	gop                       int
	viewers                   map[string]int
	leftBytes, leftSkips      uint64
	skips                     atomic.Uint64
}

func (c *counters) published(au *h264.AccessUnit) {
	c.units++
	c.bytesIn += uint64(au.Size())
	if au.Keyframe {
		c.keyframes++
	}
	c.lastUnit = au.Received
}

func (c *counters) viewerJoined(output string) {
	if c.viewers == nil {
		c.viewers = make(map[string]int)
	}
	c.viewers[output]++
}

func (c *counters) viewerLeft(output string, bytes, skips uint64) {
	c.viewers[output]--
	if c.viewers[output] <= 0 {
		delete(c.viewers, output)
	}
	c.leftBytes += bytes
	_ = skips // counted live in skips already
}

func (c *counters) skip() { c.skips.Add(1) }

// Stats is a snapshot of a feed's hub.
type Stats struct {
	Units, Keyframes, BytesIn uint64
	BytesOut                  uint64 // delivered to viewers, all outputs
	Skips                     uint64 // times a viewer jumped ahead to a keyframe
	GOPOverflows              uint64 // times a GOP outgrew twice the budget
	Viewers                   map[string]int
	ViewersTotal              int
	BufferedBytes             int
	BufferedUnits             int
	Buffered                  time.Duration // age span of what is held
	FPS                       float64       // over the last two seconds
	Bitrate                   float64       // bits per second, likewise
	GOP                       int           // units between the last two keyframes
	LastUnit                  time.Time     // zero before the first
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	st := Stats{
		Units: h.stats.units, GOP: h.stats.gop, Keyframes: h.stats.keyframes, BytesIn: h.stats.bytesIn,
		Skips: h.stats.skips.Load(), GOPOverflows: h.stats.gopOverflows,
		Viewers: make(map[string]int, len(h.stats.viewers)), ViewersTotal: len(h.subs),
		BufferedBytes: h.bytes, BufferedUnits: int(h.head - h.tail), LastUnit: h.stats.lastUnit,
		BytesOut: h.stats.leftBytes,
	}
	for k, v := range h.stats.viewers {
		st.Viewers[k] = v
	}
	for _, s := range h.subs {
		st.BytesOut += s.bytes.Load()
	}
	if h.head > h.tail {
		newest := h.at(h.head - 1).au.Received
		st.Buffered = newest.Sub(h.at(h.tail).au.Received)
		const span = 2 * time.Second
		var n, bytes int
		var oldest time.Time
		for seq := h.head; seq > h.tail; seq-- {
			au := h.at(seq - 1).au
			if newest.Sub(au.Received) > span {
				break
			}
			n++
			bytes += au.Size()
			oldest = au.Received
		}
		if d := newest.Sub(oldest).Seconds(); n > 1 && d > 0 {
			st.FPS = float64(n-1) / d
			st.Bitrate = float64(bytes*8) * float64(n-1) / float64(n) / d
		}
	}
	return st
}

// Latest returns the newest keyframe's access unit and the newest unit,
// or nils before the first keyframe. For snapshots and status.
func (h *Hub) Latest() (key, newest *h264.AccessUnit) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.head == h.tail {
		return nil, nil
	}
	newest = h.at(h.head - 1).au
	if h.hasKey {
		key = h.at(h.lastKey).au
	}
	return key, newest
}
