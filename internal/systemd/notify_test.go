package systemd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a real unix datagram socket like systemd's and returns a
// channel of the messages it receives.
func listen(t *testing.T, name string) <-chan string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return ch
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message from the notifier")
		return ""
	}
}

func TestNotifyMessages(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ch := listen(t, sock)
	n := NewNotifier(sock, 0)
	steps := []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Watchdog, "WATCHDOG=1"},
		{func() error { return n.Status("1 feed, cam: 30 fps\n2 viewers") }, "STATUS=1 feed, cam: 30 fps 2 viewers"},
		{n.Reloading, "RELOADING=1"},
		{n.Stopping, "STOPPING=1"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, ch); got != s.want {
			t.Errorf("got %q, want %q", got, s.want)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract unix sockets are Linux only")
	}
	name := fmt.Sprintf("@camfeed-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	ch := listen(t, name)
	if err := NewNotifier(name, 0).Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch); got != "READY=1" {
		t.Errorf("got %q", got)
	}
}

func TestNotifyDisabled(t *testing.T) {
	var nilN *Notifier
	for _, n := range []*Notifier{nilN, NewNotifier("", 0)} {
		if n.Enabled() || n.Ready() != nil || n.Status("x") != nil || n.Stopping() != nil || n.WatchdogInterval() != 0 {
			t.Error("a disabled notifier must do nothing and report no error")
		}
		n.Run(context.Background(), func() (bool, string) { t.Error("healthy called"); return true, "" })
	}
}

func TestNotifierFromEnv(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "@x")
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	n := NotifierFromEnv()
	if !n.Enabled() || n.WatchdogInterval() != 10*time.Second {
		t.Errorf("enabled %v, interval %v", n.Enabled(), n.WatchdogInterval())
	}
	if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Errorf("NOTIFY_SOCKET=%q still set: a camera child would inherit it", v)
	}
}

func TestWatchdogFromEnv(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"10000000", "", 10 * time.Second},
		{"10000000", "42", 10 * time.Second},
		{"10000000", "43", 0}, // meant for another process
		{"0", "", 0},
		{"x", "", 0},
	}
	for _, tt := range tests {
		if got := watchdogFromEnv(tt.usec, tt.pid, 42); got != tt.want {
			t.Errorf("usec %q pid %q: %v, want %v", tt.usec, tt.pid, got, tt.want)
		}
	}
}

// TestRunWatchdogStopsWhenUnhealthy is the behaviour systemd relies on:
// WATCHDOG=1 flows while the feeds are healthy, stops while one is
// stalled (so systemd would restart the process), and STATUS= says why.
func TestRunWatchdogStopsWhenUnhealthy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ch := listen(t, sock)
	n := NewNotifier(sock, 100*time.Millisecond) // pets every 50ms
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.Run(ctx, func() (bool, string) {
			if healthy.Load() {
				return true, "cam: 30.0 fps, 1 viewer"
			}
			return false, "cam: stalled for 12s"
		})
	}()
	defer func() { cancel(); wg.Wait() }()

	if got := recv(t, ch); got != "WATCHDOG=1\nSTATUS=cam: 30.0 fps, 1 viewer" {
		t.Fatalf("first message %q", got)
	}
	for range 3 {
		if got := recv(t, ch); got != "WATCHDOG=1" {
			t.Fatalf("healthy: got %q, want WATCHDOG=1 alone (STATUS only on change)", got)
		}
	}

	healthy.Store(false)
	for {
		got := recv(t, ch)
		if got == "WATCHDOG=1" {
			continue // sent before the flip was seen
		}
		if got != "STATUS=cam: stalled for 12s" {
			t.Fatalf("turning unhealthy: got %q", got)
		}
		break
	}
	select {
	case got := <-ch:
		t.Fatalf("unhealthy: got %q, want silence so systemd's watchdog fires", got)
	case <-time.After(400 * time.Millisecond): // 8 pet intervals
	}

	healthy.Store(true)
	if got := recv(t, ch); got != "WATCHDOG=1\nSTATUS=cam: 30.0 fps, 1 viewer" {
		t.Fatalf("healthy again: got %q", got)
	}
}

func TestRunReturnsOnCancel(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	listen(t, sock)
	n := NewNotifier(sock, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx, func() (bool, string) { return true, "" }); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestReadyWhen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ch := listen(t, sock)
	n := NewNotifier(sock, 0)

	ready := make(chan struct{})
	close(ready)
	if !n.ReadyWhen(context.Background(), ready, time.Hour) || recv(t, ch) != "READY=1" {
		t.Error("ready channel closed: want READY=1 at once")
	}
	start := time.Now()
	if !n.ReadyWhen(context.Background(), make(chan struct{}), 50*time.Millisecond) || recv(t, ch) != "READY=1" {
		t.Error("timeout: want READY=1 anyway")
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("READY=1 before the timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n.ReadyWhen(ctx, make(chan struct{}), time.Hour) {
		t.Error("cancelled: want false")
	}
	select {
	case m := <-ch:
		if !strings.HasPrefix(m, "READY") {
			t.Errorf("unexpected %q", m)
		}
		t.Error("READY=1 sent after cancel")
	default:
	}
}
