// Package hostile holds tests only: each replays one attack of issue 10
// ("hostile clients can't take camfeed down, lock viewers out, or lose a
// clip") against a whole camfeed on loopback, and checks three things: the
// attack is contained, a legitimate viewer arriving during it still gets
// its first picture, and camfeed's goroutines come back to where they were
// once the attacker leaves.
package hostile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/app"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// camfeed is a whole camfeed serving the test pattern for one test.
type camfeed struct {
	*app.App
	addrs map[string]net.Addr
	logs  *testsupport.LogBuffer
	stop  func() // stops it and waits; also run at cleanup
}

// start runs camfeed on 127.0.0.1 port 0 (RTSP and WebRTC off), after
// mutate changes the config, and waits for its first keyframe.
func start(t *testing.T, mutate func(*config.Config)) *camfeed {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP = "127.0.0.1:0"
	cfg.RTSP, cfg.WebRTC = "off", "off"
	cfg.Feeds[config.DefaultFeed].Source = "test"
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(cfg, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]net.Addr, 1)
	a.Ready = func(m map[string]net.Addr) { ready <- m }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cf := &camfeed{App: a, logs: logs}
	select {
	case cf.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("camfeed did not start: %v", err)
	}
	var once sync.Once
	cf.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Error("camfeed did not stop within 20 s")
			}
		})
	}
	t.Cleanup(func() {
		cf.stop()
		if t.Failed() {
			t.Logf("camfeed's log:\n%s", tail(logs.String(), 40))
		}
	})
	h, _ := a.Hub(config.DefaultFeed)
	waitFor(t, "the first keyframe", func() bool { return h.Stats().Keyframes > 0 })
	return cf
}

func (c *camfeed) url(path string) string { return "http://" + c.addrs["http"].String() + path }

// viewers is how many viewers the default feed has, over all outputs.
func (c *camfeed) viewers() int {
	h, _ := c.Hub(config.DefaultFeed)
	return h.Stats().ViewersTotal
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitFor polls cond for up to 30 s: functional, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client is an HTTP client that keeps no idle connections (their
// goroutines would count against the baseline), optionally dialling from
// a given local address.
func client(from string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// firstPicture plays the default feed's raw stream as a legitimate viewer
// and checks that what arrives first is a picture it can decode: SPS and
// PPS, then an IDR slice before any other slice.
func firstPicture(t *testing.T, c *camfeed, hc *http.Client, user, pass string) {
	t.Helper()
	if err := tryFirstPicture(c, hc, user, pass); err != nil {
		t.Fatalf("legitimate viewer: %v", err)
	}
}

func tryFirstPicture(c *camfeed, hc *http.Client, user, pass string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.url("/cam/stream.h264"), nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var data []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		data = append(data, buf[:n]...)
		if types, ok := firstSlice(data); ok {
			if !bytes.Contains(types, []byte{7}) || !bytes.Contains(types, []byte{8}) || types[len(types)-1] != 5 {
				return fmt.Errorf("stream starts with NAL types %v, want SPS (7), PPS (8) and then an IDR slice (5)", types)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("no picture in %d bytes: %w", len(data), err)
		}
	}
}

// firstSlice returns the NAL unit types of an Annex-B stream up to and
// including its first slice (1: non-IDR, 5: IDR), and whether one came.
func firstSlice(b []byte) (types []byte, ok bool) {
	for i := 0; i+3 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		typ := b[i+3] & 0x1f
		types = append(types, typ)
		if typ == 1 || typ == 5 {
			return types, true
		}
		i += 3
	}
	return types, false
}

// baseline counts goroutines and live heap once camfeed has served a
// first viewer (which starts what stays running), and settled checks both
// come back to it. The tests of this package run one at a time, so the
// heap is camfeed's (and the test's own clients').
type base struct {
	goroutines int
	heap       uint64
}

func baseline(t *testing.T, c *camfeed) base {
	t.Helper()
	firstPicture(t, c, client(""), "", "")
	waitFor(t, "the warm-up viewer to leave", func() bool { return c.viewers() == 0 })
	return measure()
}

// measure takes a baseline after the caller's own warm-up.
func measure() base {
	time.Sleep(100 * time.Millisecond)
	return base{goroutines: runtime.NumGoroutine(), heap: liveHeap()}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// heapSlack is how much more live heap than at the baseline is allowed
// after an attack: buffers the runtime keeps, the feed's ring refilling.
// An attack that holds memory (a 256 MiB WebSocket message, a thousand
// stalled bodies) is far above it.
const heapSlack = 48 << 20

// settled waits for the goroutines to come back to b (a few of slack for
// timers and the runtime), and for the live heap to come back near it.
func settled(t *testing.T, b base) {
	t.Helper()
	const slack = 4
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > b.goroutines+slack {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines 30 s after the attack, %d before:\n%s", runtime.NumGoroutine(), b.goroutines, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		h := liveHeap()
		if h <= b.heap+heapSlack {
			t.Logf("live heap %d MiB after the attack, %d MiB before", h>>20, b.heap>>20)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("live heap %d MiB 30 s after the attack, %d MiB before", h>>20, b.heap>>20)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nonLoopback returns an address of this machine that is not loopback,
// for the limits that exempt loopback (a local reverse proxy), or skips.
func nonLoopback(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}
