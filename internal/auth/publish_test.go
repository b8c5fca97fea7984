package auth

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
)

// TestHostileTCPPublishAllow: a tcp-listen publisher used to be admitted
// from anywhere even with users configured. Now tcp_allow decides, and
// without it only loopback may publish once a user exists; anonymous
// reading of a feed does not open publishing to it.
func TestHostileTCPPublishAllow(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open, _ := New(Config{Logger: quiet})
	users := lanConfig(t)
	users.Logger = quiet
	withUsers, _ := New(users)
	users.TCPAllow = []string{"192.168.1.0/24"}
	listed, _ := New(users)
	for i, tt := range []struct {
		a      *Authenticator
		remote string
		feed   string
		want   bool
	}{
		{open, "192.168.1.9:4000", "cam", true},
		{withUsers, "192.168.1.9:4000", "yard", false},
		{withUsers, "192.168.1.9:4000", "door", false}, // anonymous_read is not publish
		{withUsers, "127.0.0.1:4000", "yard", true},
		{listed, "192.168.1.9:4000", "yard", true},
		{listed, "192.168.7.9:4000", "yard", false},
		{listed, "127.0.0.1:4000", "yard", false}, // the list wins
	} {
		if got := tt.a.AllowTCPPublish(tcp(tt.remote), tt.feed); got != tt.want {
			t.Errorf("%d: %s %s: %v, want %v", i, tt.remote, tt.feed, got, tt.want)
		}
	}
	if open.AllowTCPPublish(nil, "cam") {
		t.Error("a connection without an address was allowed")
	}
}
