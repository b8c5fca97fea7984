package webrtc

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// slowLink is an interceptor that models a bottleneck link next to the
// network: packets drain at rate bit/s through a drop-tail queue of limit
// bytes, like a home router in front of a slow uplink. Retransmissions
// and everything else the peer sends go through it too.
type slowLink struct {
	rate  float64
	limit int

	mu    sync.Mutex
	links []*link
}

func (f *slowLink) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &slowLinkInterceptor{f: f}, nil
}

// dropped counts packets dropped so far, over all peers.
func (f *slowLink) dropped() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.links {
		l.mu.Lock()
		n += l.dropped
		l.mu.Unlock()
	}
	return n
}

type slowLinkInterceptor struct {
	interceptor.NoOp
	f *slowLink

	mu    sync.Mutex
	links []*link
}

func (i *slowLinkInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	l := &link{w: w, rate: i.f.rate, limit: i.f.limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.drain()
	i.mu.Lock()
	i.links = append(i.links, l)
	i.mu.Unlock()
	i.f.mu.Lock()
	i.f.links = append(i.f.links, l)
	i.f.mu.Unlock()
	return l
}

func (i *slowLinkInterceptor) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, l := range i.links {
		l.close()
	}
	i.links = nil
	return nil
}

type queued struct {
	hdr     rtp.Header
	payload []byte
}

type link struct {
	w     interceptor.RTPWriter
	rate  float64
	limit int

	mu      sync.Mutex
	q       []queued
	bytes   int
	dropped int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func (l *link) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	n := h.MarshalSize() + len(payload)
	l.mu.Lock()
	if l.closed || l.bytes+n > l.limit {
		l.dropped++
		l.mu.Unlock()
		return n, nil
	}
	l.q = append(l.q, queued{hdr: h.Clone(), payload: append([]byte(nil), payload...)})
	l.bytes += n
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return n, nil
}

func (l *link) drain() {
	next := time.Now()
	for {
		l.mu.Lock()
		if len(l.q) == 0 {
			l.mu.Unlock()
			select {
			case <-l.wake:
				if now := time.Now(); next.Before(now) {
					next = now
				}
				continue
			case <-l.done:
				return
			}
		}
		p := l.q[0]
		l.q = l.q[1:]
		n := p.hdr.MarshalSize() + len(p.payload)
		l.bytes -= n
		l.mu.Unlock()
		next = next.Add(time.Duration(float64(n*8) / l.rate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-l.done:
				return
			}
		}
		_, _ = l.w.Write(&p.hdr, p.payload, nil)
	}
}

func (l *link) close() {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.done)
	})
}
