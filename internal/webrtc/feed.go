package webrtc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
)

// maxGOP bounds the frames a broadcaster keeps for joiners.
const maxGOP = 300

// broadcaster reads one feed's hub once and packetises each access unit
// once, for all of the feed's peers. It runs while the feed has peers.
//
// Its own cursor replays the cached GOP (JoinKeyframe) so that it holds
// the whole GOP from the newest keyframe: each peer then starts as the
// feed's join policy says (join), which the broadcaster, shared by peers
// that join at different times, cannot say for them.
type broadcaster struct {
	s    *Server
	name string
	h    *hub.Hub
	sub  *hub.Sub

	mu    sync.Mutex
	peers []*peer // copy on write; connected or not
	gop   []*frame
	stop  context.CancelFunc
	done  chan struct{}

	frames atomic.Uint64
}

// newBroadcaster subscribes to h, takes in the cached GOP at once, so the
// first peer can start from it, and runs.
func newBroadcaster(s *Server, name string, h *hub.Hub) *broadcaster {
	join := hub.JoinKeyframe
	b := &broadcaster{s: s, name: name, h: h, done: make(chan struct{}),
		sub: h.Subscribe(hub.SubOptions{Output: "webrtc", Join: &join})}
	for {
		f, ok, err := b.sub.TryNext()
		if err != nil || !ok {
			break
		}
		b.take(f)
	}
	ctx, cancel := contextWithCancel()
	b.stop = cancel
	go b.run(ctx)
	return b
}

func (b *broadcaster) run(ctx context.Context) {
	defer close(b.done)
	defer b.sub.Close()
	for {
		f, err := b.sub.Next(ctx)
		if err != nil {
			b.mu.Lock()
			peers := b.peers
			b.mu.Unlock()
			for _, p := range peers {
				p.close("feed closed")
			}
			return
		}
		fr := b.take(f)
		b.mu.Lock()
		peers := b.peers
		b.mu.Unlock()
		for _, p := range peers {
			p.offer(fr)
		}
	}
}

// take packetises f and keeps it in the GOP cache.
func (b *broadcaster) take(f hub.Frame) *frame {
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
	b.mu.Unlock()
	return fr
}

// add attaches a peer that is not connected yet: it gets no frames
// until join.
func (b *broadcaster) add(p *peer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers = append(append([]*peer(nil), b.peers...), p)
}

// join starts a connected peer per the feed's join policy (hub.Config):
//
//   - instant: the newest keyframe at once, so the browser shows a
//     picture within a round trip, followed by the rest of its GOP when
//     the keyframe is fresh (within half the lag budget); when it is
//     older the peer continues at the next keyframe rather than replay
//     the past;
//   - keyframe: the cached GOP from the newest keyframe;
//   - next: nothing until the next keyframe.
//
// The frames given here are the join: they are sent however old they
// are, since the policy asked for them. A peer left waiting for the next
// keyframe asks the source for one.
func (b *broadcaster) join(p *peer) {
	cfg := b.h.Config()
	b.mu.Lock()
	defer b.mu.Unlock()
	var start []*frame
	if len(b.gop) > 0 {
		switch cfg.Join {
		case hub.JoinKeyframe:
			start = b.gop
		case hub.JoinInstant:
			start = b.gop[:1]
			if b.gop[len(b.gop)-1].received.Sub(b.gop[0].received) <= cfg.LagBudget/2 {
				start = b.gop
			}
		}
	}
	if len(start) > 0 {
		p.joinUntil.Store(start[len(start)-1].n)
	}
	for _, fr := range start {
		p.q <- fr // the queue holds more than maxGOP and is empty yet
	}
	if len(start) > 0 {
		p.log.Debug("webrtc: viewer joins", "frames", len(start), "keyframe_age", time.Since(start[0].received).Round(time.Millisecond).String(), "ts", start[0].ts)
	}
	p.live.Store(true)
	if len(start) < len(b.gop) || len(b.gop) == 0 {
		// The peer waits for the next keyframe: ask for one now rather
		// than leave it a GOP without a (live) picture.
		p.requestKeyframe()
	}
}

// newestKey returns the cached GOP from its keyframe if the keyframe is
// newer than frame number after and no older than fresh, else nil.
func (b *broadcaster) newestKey(after uint64, fresh time.Duration) []*frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.gop) == 0 || b.gop[0].n <= after || time.Since(b.gop[0].received) > fresh {
		return nil
	}
	return append([]*frame(nil), b.gop...)
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

// finished reports whether run has returned.
func (b *broadcaster) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}
