package limits

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ErrFull is wrapped by every FullError, for errors.Is.
var ErrFull = errors.New("limits: full")

// FullError says which limit refused a viewer. Its text is what the
// viewer is told with the 503.
type FullError struct {
	Limit string // "feed" or "ip"
	Feed  string
	Max   int
}

func (e *FullError) Error() string {
	if e.Limit == "ip" {
		return fmt.Sprintf("your address already has the maximum of %d streams open; close one and try again", e.Max)
	}
	return fmt.Sprintf("feed %q already has its maximum of %d viewers; try again later", e.Feed, e.Max)
}

func (e *FullError) Unwrap() error { return ErrFull }

// Viewers counts open streams per feed and per address. Every output
// acquires a slot before it starts streaming and releases it when the
// viewer leaves. It is safe for concurrent use.
type Viewers struct {
	mu      sync.Mutex
	maxFeed int
	maxIP   int
	feed    map[string]int
	ip      map[netip.Addr]int
}

// NewViewers returns a counter with the given caps (0: no cap).
func NewViewers(maxPerFeed, maxPerIP int) *Viewers {
	return &Viewers{maxFeed: maxPerFeed, maxIP: maxPerIP, feed: map[string]int{}, ip: map[netip.Addr]int{}}
}

// SetLimits changes the caps, on a config reload. Viewers already
// connected stay, even above a lowered cap; new ones wait for room.
func (v *Viewers) SetLimits(maxPerFeed, maxPerIP int) {
	v.mu.Lock()
	v.maxFeed, v.maxIP = maxPerFeed, maxPerIP
	v.mu.Unlock()
}

// Acquire takes a slot for a viewer of feed from ip (an invalid ip, e.g.
// a unix socket peer, counts only toward the feed). It returns a release
// func, safe to call more than once, or a *FullError.
func (v *Viewers) Acquire(feed string, ip netip.Addr) (release func(), err error) {
	ip = ip.Unmap()
	perIP := ip.IsValid() && !ip.IsLoopback()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.maxFeed > 0 && v.feed[feed] >= v.maxFeed {
		return nil, &FullError{Limit: "feed", Feed: feed, Max: v.maxFeed}
	}
	if perIP && v.maxIP > 0 && v.ip[ip] >= v.maxIP {
		return nil, &FullError{Limit: "ip", Feed: feed, Max: v.maxIP}
	}
	v.feed[feed]++
	if perIP {
		v.ip[ip]++
	}
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.feed[feed]--; v.feed[feed] <= 0 {
			delete(v.feed, feed)
		}
		if perIP {
			if v.ip[ip]--; v.ip[ip] <= 0 {
				delete(v.ip, ip)
			}
		}
	}, nil
}

// Count returns the viewers of feed holding a slot.
func (v *Viewers) Count(feed string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.feed[feed]
}

// RemoteIP returns the address of an http.Request.RemoteAddr or a
// net.Conn's RemoteAddr().String(), or the zero Addr for anything else
// (a unix socket).
func RemoteIP(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// ConnIP is RemoteIP for a connection.
func ConnIP(c net.Conn) netip.Addr {
	if t, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return RemoteIP(c.RemoteAddr().String())
}
