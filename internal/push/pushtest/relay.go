// Package pushtest has test helpers shared by the push packages.
package pushtest

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Relay is a slow uplink for UDP, on loopback: datagrams sent to Addr
// are forwarded to the target at Rate bytes a second through a drop-tail
// queue of Queue bytes, like a home router in front of a slow uplink.
// Answers come back at once, to whoever sent last.
type Relay struct {
	Addr string

	rate, queue int
	ln          net.PacketConn
	up          *net.UDPConn
	q           chan []byte
	queued      atomic.Int64
	dropped     atomic.Int64
	client      atomic.Pointer[net.UDPAddr]
	wg          sync.WaitGroup
}

// StartRelay forwards to target (host:port) until the test ends.
func StartRelay(t testing.TB, target string, rate, queue int) *Relay {
	t.Helper()
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, ta)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.LocalAddr().String(), rate: rate, queue: queue, ln: ln, up: up, q: make(chan []byte, 1<<14)}
	r.wg.Go(r.in)
	r.wg.Go(r.drain)
	r.wg.Go(r.back)
	t.Cleanup(func() {
		ln.Close()
		up.Close()
		r.wg.Wait()
	})
	return r
}

// Dropped is how many datagrams the full queue dropped.
func (r *Relay) Dropped() int { return int(r.dropped.Load()) }

// in queues what the client sends, dropping what the queue cannot hold.
func (r *Relay) in() {
	defer close(r.q)
	for {
		buf := make([]byte, 2048)
		n, from, err := r.ln.ReadFrom(buf)
		if err != nil {
			return
		}
		if ua, ok := from.(*net.UDPAddr); ok {
			r.client.Store(ua)
		}
		if r.queued.Load()+int64(n) > int64(r.queue) {
			r.dropped.Add(1)
			continue
		}
		r.queued.Add(int64(n))
		select {
		case r.q <- buf[:n]:
		default:
			r.queued.Add(-int64(n))
			r.dropped.Add(1)
		}
	}
}

// drain forwards the queue at the rate, with no credit for idle time.
func (r *Relay) drain() {
	next := time.Now()
	for p := range r.q {
		if now := time.Now(); next.Before(now) {
			next = now
		}
		next = next.Add(time.Duration(float64(len(p)) / float64(r.rate) * float64(time.Second)))
		time.Sleep(time.Until(next))
		r.queued.Add(-int64(len(p)))
		_, _ = r.up.Write(p)
	}
}

// back returns the target's answers to the client.
func (r *Relay) back() {
	buf := make([]byte, 2048)
	for {
		n, err := r.up.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable from a target not up yet
		}
		if c := r.client.Load(); c != nil {
			_, _ = r.ln.WriteTo(buf[:n], c)
		}
	}
}
