package app

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/rtsp"
)

// ErrPortsTaken is wrapped by Run's error when listeners cannot bind.
var ErrPortsTaken = errors.New("cannot listen")

// port is one address camfeed listens on and the key that moves it.
type port struct {
	key     string // config key; the flag is --key with - for _
	what    string // "HTTP", "RTSP over UDP (RTP)"
	network string // tcp or udp
	addr    string
}

// ports lists every TCP and UDP address the config listens on (port 0
// and disabled outputs left out).
func (a *App) ports() []port {
	c := a.cfg
	var out []port
	add := func(key, what, network, addr string) {
		if _, p, err := net.SplitHostPort(addr); err == nil && p != "0" {
			out = append(out, port{key, what, network, addr})
		}
	}
	if c.HTTP != "off" {
		add("http", "HTTP", "tcp", c.HTTP)
	}
	if c.TCP != "" {
		add("tcp", "raw H.264 over TCP", "tcp", c.TCP)
	}
	if c.RTSP != "off" {
		add("rtsp", "RTSP", "tcp", c.RTSP)
		if len(c.RTSPTransports) == 0 || slices.Contains(c.RTSPTransports, rtsp.TransportUDP) {
			rtp, rtcp, _ := c.RTSPUDP()
			if rtp == "" && rtcp == "" {
				rtp, rtcp = rtsp.DefaultUDPRTPAddr, rtsp.DefaultUDPRTCPAddr
			}
			add("rtsp_udp_rtp", "RTSP over UDP (RTP)", "udp", rtp)
			add("rtsp_udp_rtcp", "RTSP over UDP (RTCP)", "udp", rtcp)
		}
	}
	if c.WebRTC != "off" {
		add("webrtc", "WebRTC", "udp", c.WebRTC)
		add("webrtc", "WebRTC", "tcp", c.WebRTC)
	}
	for _, name := range a.names {
		if src, err := config.ParseSource(c.Feeds[name].Source); err == nil && src.Kind == config.SourceTCPListen {
			add("feeds."+name+".source", "the tcp-listen source of feed "+name, "tcp", src.Arg)
		}
	}
	return out
}

// checkPorts binds every address the config listens on, for a moment, so
// that all that are taken are reported at once, each with the flag or
// key that moves it, before anything starts.
func (a *App) checkPorts() error {
	var bad []string
	for _, p := range a.ports() {
		var err error
		if p.network == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket(p.network, p.addr); err == nil {
				pc.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen(p.network, p.addr); err == nil {
				ln.Close()
			}
		}
		if err != nil {
			bad = append(bad, p.taken(err))
		}
	}
	switch len(bad) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %s", ErrPortsTaken, bad[0])
	}
	return fmt.Errorf("%w: %d ports: %s", ErrPortsTaken, len(bad), strings.Join(bad, "; "))
}

// taken says that p cannot be listened on, why, and what moves it.
func (p port) taken(err error) string {
	move := "--" + strings.ReplaceAll(p.key, "_", "-") + ", or " + p.key + ": in the config"
	if strings.HasPrefix(p.key, "feeds.") {
		move = p.key + " in the config"
	}
	return fmt.Sprintf("%s %s/%s %s (move it with %s)", p.what, p.addr, p.network, why(err), move)
}

// listenFailed rewrites a listener's start error (one that slipped past
// checkPorts: a port taken in between) as checkPorts would: the port it
// is about, named once, and what moves it.
func (a *App) listenFailed(err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Addr == nil {
		return err
	}
	_, port, _ := net.SplitHostPort(oe.Addr.String())
	for _, p := range a.ports() {
		if _, pp, _ := net.SplitHostPort(p.addr); pp == port && strings.HasPrefix(oe.Net, p.network) {
			return fmt.Errorf("%w: %s", ErrPortsTaken, p.taken(err))
		}
	}
	return err
}

// why says in words why a listen failed, without repeating the address.
func why(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "is in use by another program"
	case errors.Is(err, syscall.EACCES):
		return "needs more privilege (a port below 1024)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "is not an address of this machine"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "cannot be used: " + oe.Err.Error()
	}
	return "cannot be used: " + err.Error()
}
