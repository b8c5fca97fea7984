package source

import (
	"sync/atomic"
	"time"
)

// DefaultPublishTimeout is how long a publisher (tcp-listen, RTSP
// ANNOUNCE) may hold a feed's one publisher slot without delivering an
// access unit. A connection that sends nothing, or nothing decodable,
// would otherwise keep the real camera out for as long as the kernel
// keeps the connection.
const DefaultPublishTimeout = 5 * time.Second

// UnitCounter is what a Sink may also offer: how many whole access units
// it has taken so far. A source that admits publishers watches it to
// drop one that sends no video (see WatchPublisher). The feed's sink
// implements it; for a sink that does not, any bytes count as progress.
type UnitCounter interface {
	Units() uint64
}

// WatchPublisher calls drop once when progress has not grown for timeout:
// first counted from now (a publisher that connects and sends nothing),
// then from its last growth (one that stops). stop ends the watch; it
// must be called, and drop is not called after it returns.
func WatchPublisher(progress func() uint64, timeout time.Duration, drop func()) (stop func()) {
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(min(timeout/4, 250*time.Millisecond))
		defer tick.Stop()
		last, since := progress(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if n := progress(); n != last {
					last, since = n, now
				} else if now.Sub(since) >= timeout {
					drop()
					return
				}
			}
		}
	}()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
		<-ended
	}
}

// countingSink counts the bytes and units that pass to a Sink without
// UnitCounter.
type countingSink struct {
	Sink
	n atomic.Uint64
}

func (c *countingSink) Write(p []byte) (int, error) {
	c.n.Add(uint64(len(p)))
	return c.Sink.Write(p)
}

func (c *countingSink) WriteAU(nalus [][]byte) {
	c.n.Add(1)
	c.Sink.WriteAU(nalus)
}

// progressOf returns how a publisher's progress into sink is measured,
// and the sink to write to.
func progressOf(sink Sink) (Sink, func() uint64) {
	if u, ok := sink.(UnitCounter); ok {
		return sink, u.Units
	}
	c := &countingSink{Sink: sink}
	return c, c.n.Load
}
