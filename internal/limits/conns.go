package limits

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ConnLimit wraps ln so that one address holds at most max open
// connections (0: no cap). A connection over the cap is closed as soon as
// it is accepted, before a byte is read or a TLS handshake started, so a
// single host cannot exhaust camfeed's goroutines and file descriptors
// however slowly it talks.
//
// Loopback is exempt, as for MaxViewersPerIP: behind a reverse proxy on
// the same machine every client arrives from 127.0.0.1, and the proxy is
// where per-client limits then belong (nginx limit_conn).
func ConnLimit(ln net.Listener, max int) *ConnLimiter {
	return &ConnLimiter{Listener: ln, max: max, open: map[netip.Addr]int{}}
}

// ConnLimiter is a listener with a per-address connection cap; see
// ConnLimit.
type ConnLimiter struct {
	net.Listener
	// Exempt decides which addresses are not counted; nil exempts
	// loopback. Tests set it to count loopback too.
	Exempt func(netip.Addr) bool
	// OnRefuse, if set, is called for every connection closed for being
	// over the cap (metrics).
	OnRefuse func()

	mu      sync.Mutex
	max     int
	open    map[netip.Addr]int
	refused atomic.Uint64
}

// Accept returns the next connection within the cap. Connections over it
// are closed and never returned.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := ConnIP(c)
		if !ip.IsValid() || l.exempt(ip) {
			return c, nil
		}
		l.mu.Lock()
		if l.max > 0 && l.open[ip] >= l.max {
			l.mu.Unlock()
			l.refused.Add(1)
			if l.OnRefuse != nil {
				l.OnRefuse()
			}
			c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *ConnLimiter) exempt(ip netip.Addr) bool {
	if l.Exempt != nil {
		return l.Exempt(ip)
	}
	return ip.IsLoopback()
}

// SetMax changes the cap, on a config reload; open connections stay.
func (l *ConnLimiter) SetMax(max int) {
	l.mu.Lock()
	l.max = max
	l.mu.Unlock()
}

// Open returns the connections ip holds.
func (l *ConnLimiter) Open(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[ip.Unmap()]
}

// Refused returns how many connections were closed for being over the cap.
func (l *ConnLimiter) Refused() uint64 { return l.refused.Load() }

func (l *ConnLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// limitedConn gives its slot back when closed (once, however often Close
// is called: http.Server and a hijacker may both close it).
type limitedConn struct {
	net.Conn
	l    *ConnLimiter
	ip   netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// NetConn returns the connection underneath, as tls.Conn's does, so code
// that tunes TCP sockets can reach the *net.TCPConn.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes, as net/http does before closing a connection
// so the client reads the whole answer.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps sendfile for file responses (recordings, clips).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// TCPConn finds the TCP connection under c, through wrappers that expose
// it as NetConn (tls.Conn, the per-address connection limit), for socket
// options.
func TCPConn(c net.Conn) (*net.TCPConn, bool) {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v, true
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil, false
		}
	}
}
