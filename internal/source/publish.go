package source

import (
	"context"
	"errors"
	"sync"
)

// Errors Attach returns.
var (
	ErrBusy       = errors.New("a publisher is already sending to this feed")
	ErrNotRunning = errors.New("the feed is not running")
)

// Publish is the source of a feed whose video is pushed to camfeed (an
// RTSP publisher: ANNOUNCE/RECORD). The RTSP server calls Attach for the
// one publisher at a time; what it writes goes to whichever attempt of the
// feed is running, so a watchdog restart does not cut the publisher off.
type Publish struct {
	mu       sync.Mutex
	sink     Sink // the running attempt's, nil between attempts
	attached bool
}

func (*Publish) String() string { return "publish" }

// Passive: the feed waits for a publisher.
func (*Publish) Passive() bool { return true }

// Run implements Source: it makes sink the publisher's target until ctx
// ends.
func (p *Publish) Run(ctx context.Context, sink Sink) error {
	p.mu.Lock()
	p.sink = sink
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.sink = nil
	p.mu.Unlock()
	return ctx.Err()
}

// Attach admits one publisher. It returns the Sink to write access units
// to and a release func to call when the publisher leaves.
func (p *Publish) Attach() (Sink, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.attached {
		return nil, nil, ErrBusy
	}
	p.attached = true
	var once sync.Once
	return publishSink{p}, func() {
		once.Do(func() {
			p.mu.Lock()
			p.attached = false
			if p.sink != nil {
				p.sink.Idle()
				if b, ok := p.sink.(InputBreaker); ok {
					b.NewInput() // the next publisher starts from its keyframe
				}
			}
			p.mu.Unlock()
		})
	}, nil
}

// publishSink forwards to the running attempt's sink, or drops what comes
// between attempts (a restart takes milliseconds; the next attempt starts
// at the next keyframe anyway).
type publishSink struct{ p *Publish }

func (s publishSink) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.sink == nil {
		return len(b), nil
	}
	return s.p.sink.Write(b)
}

func (s publishSink) Idle() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.sink != nil {
		s.p.sink.Idle()
	}
}

func (s publishSink) WriteAU(nalus [][]byte) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.sink != nil {
		s.p.sink.WriteAU(nalus)
	}
}
