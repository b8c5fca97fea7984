package webrtc

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/camfeed/camfeed/internal/hub"
)

// maxGOP bounds the frames a broadcaster keeps for joiners.
const maxGOP = 300

// broadcaster reads one feed's hub once and packetises each access unit
// once, for all of the feed's peers. It runs while the feed has peers.
type broadcaster struct {
	s    *Server
	name string
	h    *hub.Hub

	mu    sync.Mutex
	peers []*peer // copy on write
	gop   []*frame
	stop  context.CancelFunc
	done  chan struct{}

	frames atomic.Uint64
}

func (b *broadcaster) run(ctx context.Context) {
	defer close(b.done)
	join := hub.JoinInstant
	sub := b.h.Subscribe(hub.SubOptions{Output: "webrtc", Join: &join, LagBudget: b.s.cfg.LagBudget})
	defer sub.Close()
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			b.mu.Lock()
			peers := b.peers
			b.mu.Unlock()
			for _, p := range peers {
				p.close("feed closed")
			}
			return
		}
		fr := packetize(f.AccessUnit)
		fr.n = f.Seq + 1 // 0 means none sent
		b.frames.Add(1)
		b.mu.Lock()
		switch {
		case fr.keyframe:
			b.gop = append(b.gop[:0], fr)
		case f.Skipped || len(b.gop) == 0 || len(b.gop) >= maxGOP:
			b.gop = b.gop[:0] // not decodable from the cached keyframe any more
		default:
			b.gop = append(b.gop, fr)
		}
		peers := b.peers
		b.mu.Unlock()
		for _, p := range peers {
			p.offer(fr)
		}
	}
}

// add attaches a peer and gives it a start: the newest keyframe at once,
// so the browser shows a picture within a round trip, followed by the
// rest of its GOP when the keyframe is fresh (the hub's JoinInstant
// rule); when it is older the peer waits for the next keyframe rather
// than replay a second of the past.
func (b *broadcaster) add(p *peer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.gop) > 0 {
		newest := b.gop[len(b.gop)-1].received
		if newest.Sub(b.gop[0].received) <= b.s.lagBudget()/2 {
			for _, fr := range b.gop {
				p.offer(fr)
			}
		} else {
			p.offer(b.gop[0])
			p.offer(nil) // needKey marker: wait for the next keyframe
		}
	}
	b.peers = append(append([]*peer(nil), b.peers...), p)
}

// remove detaches a peer and says whether none are left.
func (b *broadcaster) remove(p *peer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.peers {
		if x == p {
			n := append([]*peer(nil), b.peers[:i]...)
			b.peers = append(n, b.peers[i+1:]...)
			break
		}
	}
	return len(b.peers) == 0
}

// gopSnapshot returns the newest keyframe and the frames after it.
func (b *broadcaster) gopSnapshot() []*frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*frame(nil), b.gop...)
}

// finished reports whether run has returned.
func (b *broadcaster) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}
