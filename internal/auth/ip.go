package auth

import (
	"errors"
	"net"
	"net/netip"
	"strings"
)

// AllowTCP decides whether remote may connect to the raw TCP output for
// feed. A bare TCP stream cannot carry credentials, so:
//   - with tcp_allow set, only addresses it lists may connect;
//   - without it, anyone may connect when the feed can be read
//     anonymously (the no-users default), and otherwise only this machine
//     (loopback), so adding a user never leaves the TCP output open.
func (a *Authenticator) AllowTCP(remote net.Addr, feed string) bool {
	return a.allowByAddress(remote, feed, Read, errTCPNotAllowed)
}

// allowByAddress is the rule of the TCP outputs and tcp-listen sources,
// which carry no credentials: tcp_allow when set, else anyone when action
// on feed needs no credentials, else loopback only. A refusal is logged
// (and counted) as err.
func (a *Authenticator) allowByAddress(remote net.Addr, feed, action string, err error) bool {
	addr := addrOf(remote)
	ok := false
	switch {
	case !addr.IsValid():
	case len(a.tcpAllow) > 0:
		ok = inPrefixes(addr, a.tcpAllow)
	case a.Anonymous(feed, action):
		ok = true
	default:
		ok = addr.IsLoopback()
	}
	if !ok {
		a.logRefusal(remoteString(remote), "", feed, action, err)
	}
	return ok
}

var errTCPNotAllowed = errors.New("auth: address not allowed to use the TCP output (tcp_allow)")

// AllowIP reports whether addr ("IP", "IP:port" or "[IPv6]:port") is in
// list. An IPv4 address arriving as IPv4-mapped IPv6 matches IPv4
// prefixes. An empty list allows nobody.
func AllowIP(addr string, list []netip.Prefix) bool {
	ip, err := parseAddr(addr)
	if err != nil {
		return false
	}
	return inPrefixes(ip, list)
}

func inPrefixes(ip netip.Addr, list []netip.Prefix) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses an allow-list of addresses and CIDR prefixes.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ip, _ := parseAddr(a.String())
	return ip
}

func remoteString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
