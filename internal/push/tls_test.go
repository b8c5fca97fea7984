package push_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// tlsProxy terminates TLS with a self-signed certificate and forwards to
// target in the clear.
func tlsProxy(t *testing.T, target string) string {
	t.Helper()
	tc, err := auth.TLSConfig{SelfSigned: true}.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	proxy(t, ln, target, func(c, up net.Conn) { _, _ = io.Copy(up, c) })
	return ln.Addr().String()
}

// TestTLSTargets: rtmps and rtsps speak TLS and check the server's
// certificate; a self-signed one is refused in words.
func TestTLSTargets(t *testing.T) {
	ng := startNginx(t, freePort(t), "")
	proxy := tlsProxy(t, fmt.Sprintf("127.0.0.1:%d", ng.Port))
	for _, u := range []string{"rtmps://" + proxy + "/live/cam", "rtsps://" + proxy + "/cam"} {
		t.Run(strings.Split(u, ":")[0], func(t *testing.T) {
			ps := startPush(t, push.Config{}, testLagBase, u)
			testsupport.Eventually(t, "a certificate error", func() bool {
				return strings.Contains(ps.status().LastError, "the server's TLS certificate is not valid")
			})
			ps.stop()
		})
	}
}
