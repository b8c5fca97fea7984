package raw

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// counter is an Observer that counts what it is told.
type counter struct{ lag, send atomic.Int64 }

func (c *counter) ObserveLag(time.Duration)          { c.lag.Add(1) }
func (c *counter) ObserveIngestToSend(time.Duration) { c.send.Add(1) }

// startFeed runs the test pattern (320x240, a keyframe a second) live.
func startFeed(t *testing.T) (*testfeed.Feed, testfeed.Feeds) {
	t.Helper()
	f := testfeed.Start(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	return f, testfeed.Feeds{"cam": f.Hub}
}

// readUnits reads r until n whole access units have arrived (or it ends).
func readUnits(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	var data []byte
	buf := make([]byte, 32<<10)
	for len(testfeed.Units(data)) < n {
		k, err := r.Read(buf)
		data = append(data, buf[:k]...)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(data), err)
		}
	}
	return data
}

// TestHTTP: /stream.h264 and /{feed}/stream.h264 send the feed from a
// keyframe with its SPS and PPS, without gaps, with headers that keep
// caches and sniffers away; an unknown feed is a 404 and HEAD has no body.
func TestHTTP(t *testing.T) {
	testsupport.CheckGoroutines(t, "camfeed/internal/raw")
	_, feeds := startFeed(t)
	obs := &counter{}
	h := &HTTP{Door: door.Unlimited(feeds), DefaultFeed: "cam", Log: quiet(), Observe: func(feed, output string) Observer {
		if feed != "cam" || output != "http" {
			t.Errorf("observer for %s/%s", feed, output)
		}
		return obs
	}}
	base := testsupport.Serve(t, h.Register)
	client := &http.Client{Timeout: 3 * testsupport.Patience}
	for _, path := range []string{"/stream.h264", "/cam/stream.h264"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/h264" ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "no-store") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		units := testfeed.Units(readUnits(t, resp.Body, 45))
		resp.Body.Close()
		testfeed.CheckStream(t, path, units)
	}
	if obs.lag.Load() == 0 || obs.send.Load() == 0 {
		t.Errorf("observer saw %d lags and %d sends", obs.lag.Load(), obs.send.Load())
	}
	resp, err := client.Get(base + "/nope/stream.h264")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), "no such feed") {
		t.Errorf("unknown feed: %d %q", resp.StatusCode, body)
	}
	resp, err = client.Head(base + "/cam/stream.h264")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Type") != "video/h264" {
		t.Errorf("HEAD: %d, %d bytes, %v", resp.StatusCode, len(body), resp.Header)
	}
}

// TestListener: a TCP viewer gets the stream; one refused by Allow gets
// nothing, one refused by the door its reason in words; a viewer that
// hangs up leaves the door at once; and Serve returns, with every
// connection closed, when its context ends.
func TestListener(t *testing.T) {
	testsupport.CheckGoroutines(t, "camfeed/internal/raw")
	f, feeds := startFeed(t)
	refuse := atomic.Bool{}
	d := door.New(feeds, limits.NewViewers(limits.Caps{PerFeed: 2}), nil, quiet())
	open := func() int { return d.Count("cam")[door.TCP] }
	l := &Listener{Door: d, Feed: "cam", Log: quiet(),
		Allow: func(remote net.Addr) bool { return !refuse.Load() }}
	dial, stop := serveListener(t, l, 0)

	a := dial()
	testfeed.CheckStream(t, "tcp viewer", testfeed.Units(readUnits(t, a, 45)))

	b := dial() // the second viewer, then hangs up
	readUnits(t, b, 2)
	b.Close()
	testsupport.Eventually(t, "the viewer that hung up is let go", func() bool { return open() == 1 })
	second := dial() // holds the second place: the next one is over the limit
	readUnits(t, second, 2)

	over := dial()
	msg, _ := io.ReadAll(over)
	over.Close()
	if string(msg) != "camfeed: feed \"cam\" already has its maximum of 2 viewers; try again later\n" {
		t.Errorf("viewer over the limit got %q", msg)
	}
	refuse.Store(true)
	denied := dial()
	msg, _ = io.ReadAll(denied)
	denied.Close()
	if len(msg) != 0 {
		t.Errorf("viewer refused by the allow-list got %d bytes", len(msg))
	}
	if n := f.Hub.Stats().Viewers["tcp"]; n != 2 {
		t.Errorf("%d tcp viewers on the hub, want 2", n)
	}

	stop()
	if _, err := io.ReadAll(a); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Logf("viewer at the end: %v", err)
	}
	a.Close()
	second.Close()
	if n := open(); n != 0 {
		t.Errorf("%d viewers still in the door, want 0", n)
	}
}

// TestListenUnix: a stale socket from an earlier run is replaced, and the
// new one is for owner and group only.
func TestListenUnix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	ln, err := ListenUnix(dir, "cam")
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file behind
	ln, err = ListenUnix(dir, "cam")
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	fi, err := os.Stat(filepath.Join(dir, "cam.sock"))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket %v %v", fi, err)
	}
	// A file that is not a socket is never removed.
	if err := os.WriteFile(filepath.Join(dir, "door.sock"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(dir, "door"); err == nil {
		t.Error("ListenUnix replaced a regular file")
	}
}

// TestFIFO: a reader of the named pipe gets the stream from a keyframe;
// when it leaves, the next reader does too; a path that is not a pipe is
// an error.
func TestFIFO(t *testing.T) {
	testsupport.CheckGoroutines(t, "camfeed/internal/raw")
	_, feeds := startFeed(t)
	path := filepath.Join(t.TempDir(), "cam.h264")
	fifo := &FIFO{Path: path, Door: door.Unlimited(feeds), Feed: "cam", Log: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = fifo.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	}()
	testsupport.Eventually(t, "the pipe exists", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Mode()&os.ModeNamedPipe != 0
	})
	for i := range 2 {
		r, err := os.OpenFile(path, os.O_RDONLY, 0) // blocks until the writer opens it
		if err != nil {
			t.Fatal(err)
		}
		r.SetReadDeadline(time.Now().Add(3 * testsupport.Patience))
		testfeed.CheckStream(t, "fifo reader", testfeed.Units(readUnits(t, r, 10)))
		r.Close()
		_ = i
	}

	notPipe := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notPipe, nil, 0o644)
	err := (&FIFO{Path: notPipe, Door: door.Unlimited(feeds), Feed: "cam", Log: quiet()}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is not a named pipe") {
		t.Errorf("a regular file: %v", err)
	}
}

// TestServeStopsAtClose: Serve returns nil when the hub closes, and the
// error of a failed write otherwise.
func TestServeStopsAtClose(t *testing.T) {
	f, _ := startFeed(t)
	sub := f.Hub.Subscribe(hub.SubOptions{Output: "test"})
	defer sub.Close()
	broken := errors.New("broken pipe")
	if err := Serve(context.Background(), sub, failWriter{broken}, nil, nil, 0, nil); !errors.Is(err, broken) {
		t.Errorf("failed write: %v", err)
	}
	sub2 := f.Hub.Subscribe(hub.SubOptions{Output: "test"})
	defer sub2.Close()
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), sub2, &lockedWriter{w: &buf}, nil, nil, 0, nil) }()
	time.Sleep(100 * time.Millisecond)
	f.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("at hub close: %v", err)
		}
	case <-time.After(testsupport.Patience):
		t.Fatal("Serve did not return when the hub closed")
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
