package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// testApp is a camfeed running on loopback for one test.
type testApp struct {
	*App
	addrs map[string]net.Addr
	logs  *testsupport.LogBuffer
}

// startApp runs camfeed with the test pattern on 127.0.0.1 port 0, after
// mutate changes the config. It stops when the test ends.
func startApp(t testing.TB, mutate func(*config.Config)) *testApp {
	t.Helper()
	cfg := testConfig(t, mutate)
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := New(cfg, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]net.Addr, 1)
	a.Ready = func(m map[string]net.Addr) { ready <- m }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	ta := &testApp{App: a, logs: logs}
	select {
	case ta.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("app did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("app did not stop within 10 s")
		}
	})
	return ta
}

// testConfig is the config of startApp: the test pattern, HTTP on
// 127.0.0.1 port 0, RTSP and WebRTC off, then mutate, validated.
func testConfig(t testing.TB, mutate func(*config.Config)) *config.Config {
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
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (ta *testApp) url(path string) string { return "http://" + ta.addrs["http"].String() + path }

// waitFrames waits until the feed has published n access units.
func (ta *testApp) waitFrames(t testing.TB, feed string, n uint64) {
	t.Helper()
	h, _ := ta.Hub(feed)
	wait := 3 * testsupport.Patience
	deadline := time.Now().Add(wait)
	for h.Stats().Units < n {
		if time.Now().After(deadline) {
			t.Fatalf("feed %s: %d frames after %v, want %d\nlogs:\n%s", feed, h.Stats().Units, wait, n, ta.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stamp is one access unit as a viewer received it: when its time SEIs
// arrived, and what they say.
type stamp struct {
	arrived  time.Time
	ingest   time.Time
	captured time.Time
	edge     time.Time // the feed's newest ingest stamp when it arrived (with recorder.edge)
}

// recorder reads a raw H.264 stream, keeps every byte and notes when each
// access unit's ingest stamp arrived.
type recorder struct {
	// discard keeps only the time stamps, not the bytes (many viewers).
	discard bool
	// edge, when set, returns the feed's newest ingest stamp: lag on the
	// stream's own clock is then edge minus ingest (see lags).
	edge    func() time.Time
	data    []byte
	stamps  []stamp
	scanned int
	pending stamp
}

// add appends a chunk read at now and records the time stamps it completes.
func (r *recorder) add(p []byte, now time.Time) {
	r.data = append(r.data, p...)
	for {
		i := bytes.Index(r.data[r.scanned:], h264.TimeUUID[:])
		if i < 0 {
			r.scanned = max(r.scanned, len(r.data)-16)
			if r.discard && len(r.data) > 64<<10 {
				keep := len(r.data) - r.scanned + 3
				r.data = append(r.data[:0], r.data[len(r.data)-keep:]...)
				r.scanned = 3
			}
			return
		}
		at := r.scanned + i
		if at < 3 || len(r.data) < at+16+1+8+8 {
			return // wait for the rest of this SEI
		}
		kind, ts, err := h264.ParseTimeSEI(r.data[at-3 : at+16+1+8+8])
		r.scanned = at + 16
		if err != nil {
			continue
		}
		switch kind {
		case h264.TimeCapture:
			r.pending.captured = ts
		case h264.TimeIngest:
			r.pending.ingest, r.pending.arrived = ts, now
			if r.edge != nil {
				r.pending.edge = r.edge()
			}
			r.stamps = append(r.stamps, r.pending)
			r.pending = stamp{}
		}
	}
}

// units parses everything received into access units (offline).
func (r *recorder) units() []*h264.AccessUnit {
	var out []*h264.AccessUnit
	p := h264.NewParser(h264.ParserConfig{})
	emit := func(au *h264.AccessUnit) { out = append(out, au) }
	p.Write(r.data, time.Now(), emit)
	p.Flush(time.Now(), emit)
	return out
}

// whole returns the complete access units received, in Annex-B: the last
// one may have been cut off when the test stopped reading.
func (r *recorder) whole() []byte {
	units := r.units()
	var out []byte
	for _, au := range units[:max(0, len(units)-1)] {
		out = append(out, au.Data...)
	}
	// Each unit ends with an AUD for the next one; at the end of a cut
	// recording there is no next one, and ffmpeg would say so.
	return bytes.TrimSuffix(out, []byte{0, 0, 0, 1, 9, 0xf0})
}

// latencies returns arrival minus ingest for every stamp.
func (r *recorder) latencies() []time.Duration {
	out := make([]time.Duration, len(r.stamps))
	for i, s := range r.stamps {
		out[i] = s.arrived.Sub(s.ingest)
	}
	return out
}

// lags returns, for every stamp, how far behind the feed's live edge the
// unit was when it arrived, on the stream's own clock: the newest unit's
// ingest stamp minus this one's. Unlike arrival minus ingest, it does not
// grow when a busy machine is late to run the test pattern or the test.
func (r *recorder) lags() []time.Duration {
	out := make([]time.Duration, len(r.stamps))
	for i, s := range r.stamps {
		out[i] = max(0, s.edge.Sub(s.ingest))
	}
	return out
}

// liveEdge returns a recorder.edge for the named feed.
func (ta *testApp) liveEdge(feed string) func() time.Time {
	h, _ := ta.Hub(feed)
	return func() time.Time {
		if _, newest := h.Latest(); newest != nil {
			return newest.Received
		}
		return time.Time{}
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// readFor reads r for d (or until it fails), recording what arrives.
func readFor(r io.Reader, d time.Duration, rec *recorder) {
	type deadliner interface{ SetReadDeadline(time.Time) error }
	end := time.Now().Add(d)
	if dl, ok := r.(deadliner); ok {
		dl.SetReadDeadline(end)
	}
	buf := make([]byte, 32<<10)
	for time.Now().Before(end) {
		n, err := r.Read(buf)
		if n > 0 {
			rec.add(buf[:n], time.Now())
		}
		if err != nil {
			return
		}
	}
}

// readUnits reads r until n whole access units have arrived, failing the
// test after a generous timeout: unlike readFor, what it gets does not
// depend on how busy the machine is.
func readUnits(t testing.TB, r io.Reader, n int, rec *recorder) {
	t.Helper()
	if err := readUntil(r, rec, func() bool { return len(rec.units()) > n }); err != nil { // the last unit may be cut off
		t.Fatalf("after %d units: %v", len(rec.units()), err)
	}
}

// readUntil reads r, recording what arrives, until done holds, for up to
// a generous timeout. It does not touch the test, so a goroutine may run it.
func readUntil(r io.Reader, rec *recorder, done func() bool) error {
	type deadliner interface{ SetReadDeadline(time.Time) error }
	if dl, ok := r.(deadliner); ok {
		dl.SetReadDeadline(time.Now().Add(3 * testsupport.Patience))
	}
	buf := make([]byte, 32<<10)
	for !done() {
		k, err := r.Read(buf)
		if k > 0 {
			rec.add(buf[:k], time.Now())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// httpGet opens a raw stream; the body is closed at the end of the test.
func httpGet(t testing.TB, url string, timeout time.Duration) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close(); cancel() })
	return resp, cancel
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func parseSPS(n []byte) (string, error) {
	info, err := h264.ParseSPS(n)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%dx%d", info.Width, info.Height), nil
}

// testHash is a bcrypt hash of pw at the lowest cost. The tests check who
// gets in, not how long a guess takes, and at the default cost one check
// takes seconds under -race on a busy machine.
func testHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
