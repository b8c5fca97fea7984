package auth

import (
	"errors"
	"net"
)

// AllowTCPPublish decides whether remote may publish to feed through a
// tcp-listen source. Like the raw TCP output, a bare TCP stream carries
// no credentials, so the same allow-list decides:
//   - with tcp_allow set, only addresses it lists may publish;
//   - without it, anyone may when publishing needs no credentials (no
//     users configured), and otherwise only this machine (loopback), so
//     adding a user never leaves the publisher port open to the network.
func (a *Authenticator) AllowTCPPublish(remote net.Addr, feed string) bool {
	return a.allowByAddress(remote, feed, Publish, errTCPPublishNotAllowed)
}

var errTCPPublishNotAllowed = errors.New("auth: address not allowed to publish over TCP (tcp_allow)")
