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
	Limit string // "feed", "ip" or "total"
	Feed  string
	Max   int
}

func (e *FullError) Error() string {
	switch e.Limit {
	case "ip":
		return fmt.Sprintf("your address already has the maximum of %d streams open; close one and try again", e.Max)
	case "total":
		return fmt.Sprintf("camfeed already serves its maximum of %d viewers; try again later", e.Max)
	}
	return fmt.Sprintf("feed %q already has its maximum of %d viewers; try again later", e.Feed, e.Max)
}

func (e *FullError) Unwrap() error { return ErrFull }

// Caps are the viewer limits; 0 is no cap.
type Caps struct {
	PerFeed, PerIP, Total int
	// LimitLoopback applies PerIP to loopback addresses too. Off by
	// default: behind a reverse proxy on the same machine every viewer
	// comes from 127.0.0.1.
	LimitLoopback bool
}

// Caps returns the viewer caps of the configuration.
func (c Config) Caps() Caps {
	return Caps{PerFeed: c.MaxViewersPerFeed, PerIP: c.MaxViewersPerIP, Total: c.MaxViewers, LimitLoopback: c.LimitLoopback}
}

// Viewers counts open sessions per feed, per address and overall. The
// door (internal/door) acquires a slot for every viewer of every protocol
// before it is served and releases it when the viewer leaves. It is safe
// for concurrent use.
type Viewers struct {
	mu    sync.Mutex
	caps  Caps
	total int
	feed  map[string]int
	ip    map[netip.Addr]int
}

// NewViewers returns a counter with the given caps.
func NewViewers(c Caps) *Viewers {
	return &Viewers{caps: c, feed: map[string]int{}, ip: map[netip.Addr]int{}}
}

// SetCaps changes the caps, on a config reload. Viewers already
// connected stay, even above a lowered cap; new ones wait for room.
func (v *Viewers) SetCaps(c Caps) {
	v.mu.Lock()
	v.caps = c
	v.mu.Unlock()
}

// Acquire takes a slot for a viewer of feed from ip (an invalid ip, e.g.
// a unix socket peer, counts only toward the feed). It returns a release
// func, safe to call more than once, or a *FullError.
func (v *Viewers) Acquire(feed string, ip netip.Addr) (release func(), err error) {
	ip = ip.Unmap()
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.caps
	perIP := ip.IsValid() && (c.LimitLoopback || !ip.IsLoopback())
	if c.Total > 0 && v.total >= c.Total {
		return nil, &FullError{Limit: "total", Feed: feed, Max: c.Total}
	}
	if c.PerFeed > 0 && v.feed[feed] >= c.PerFeed {
		return nil, &FullError{Limit: "feed", Feed: feed, Max: c.PerFeed}
	}
	if perIP && c.PerIP > 0 && v.ip[ip] >= c.PerIP {
		return nil, &FullError{Limit: "ip", Feed: feed, Max: c.PerIP}
	}
	v.total++
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
		v.total--
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

// Total returns the viewers holding a slot, over all feeds.
func (v *Viewers) Total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.total
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
