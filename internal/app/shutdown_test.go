package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestShutdownLogsEveryViewer: viewers connected at shutdown, over raw
// HTTP and MSE (both take their connection over from net/http, so
// http.Server.Shutdown does not wait for them) and a unix socket, each get
// their "viewer left" line, with the reason camfeed stopped, before
// "stopped". The MSE viewer's line was lost, the raw one came after
// "stopped", and the unix one said the viewer had closed the connection. The raw viewer has stopped reading,
// so its output only notices at the write timeout: shutdown waits for it
// (within its grace period) instead of exiting first.
func TestShutdownLogsEveryViewer(t *testing.T) {
	logs := &testsupport.LogBuffer{}
	sockets := t.TempDir()
	_, base, cancel, done := runOwned(t, logs, func(c *config.Config) {
		c.Limits.WriteTimeout = time.Second // under shutdownGrace
		c.UnixDir = sockets
	})
	// A raw viewer that stops reading, with a small receive buffer so
	// that camfeed's writes to it block soon.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", base.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("GET /cam/stream.h264 HTTP/1.1\r\nHost: camfeed\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+base.String()+"/cam/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	unix, err := net.Dial("unix", filepath.Join(sockets, "cam.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	go func() { _, _ = io.Copy(io.Discard, unix) }()
	testsupport.Eventually(t, "the viewers joined", func() bool { return strings.Count(logs.String(), `msg="viewer joined"`) == 3 })
	time.Sleep(500 * time.Millisecond) // the raw viewer's buffers fill; the test passes however far they got

	cancel()
	select {
	case <-done:
	case <-time.After(testsupport.Patience):
		t.Fatal("shutdown did not finish")
	}
	out := logs.String()
	stopped := strings.Index(out, "msg=stopped")
	for _, protocol := range []string{door.HTTP, door.MSE, door.Unix} {
		i := strings.Index(out, `msg="viewer left" component=door feed=cam protocol=`+protocol+" ")
		if i < 0 || i > stopped {
			t.Errorf("%s viewer: no left line before stopped:\n%s", protocol, out)
			continue
		}
		line := out[i : i+strings.IndexByte(out[i:], '\n')]
		if !strings.Contains(line, `reason="`+door.ReasonShutdown+`"`) {
			t.Errorf("%s viewer left with another reason: %s", protocol, line)
		}
	}
}

// runOwned runs camfeed with the test pattern and HTTP on loopback, like
// startApp, but leaves the shutdown to the test: it returns the app, its
// HTTP address, the cancel that starts the shutdown and Run's result.
func runOwned(t *testing.T, logs *testsupport.LogBuffer, mutate func(*config.Config)) (*App, net.Addr, context.CancelFunc, <-chan error) {
	t.Helper()
	a, err := New(testConfig(t, mutate), "test", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]net.Addr, 1)
	a.Ready = func(m map[string]net.Addr) { ready <- m }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case addrs := <-ready:
		return a, addrs["http"], cancel, done
	case err := <-done:
		t.Fatalf("app did not start: %v", err)
	}
	return nil, nil, nil, nil
}
