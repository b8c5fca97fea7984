package limits

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestViewers(t *testing.T) {
	v := NewViewers(Caps{PerFeed: 3, PerIP: 2})
	a := netip.MustParseAddr("192.168.1.10")
	b := netip.MustParseAddr("192.168.1.11")
	lo := netip.MustParseAddr("127.0.0.1")

	r1, err := v.Acquire("cam", a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := v.Acquire("cam", a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Acquire("door", a) // third stream from a, another feed
	var full *FullError
	if !errors.As(err, &full) || full.Limit != "ip" || !errors.Is(err, ErrFull) {
		t.Fatalf("per-IP: %v", err)
	}
	if err.Error() != "your address already has the maximum of 2 streams open; close one and try again" {
		t.Errorf("message %q", err)
	}
	r3, err := v.Acquire("cam", b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Acquire("cam", lo)
	if !errors.As(err, &full) || full.Limit != "feed" {
		t.Fatalf("per-feed: %v", err)
	}
	if err.Error() != `feed "cam" already has its maximum of 3 viewers; try again later` {
		t.Errorf("message %q", err)
	}
	r1()
	r1() // twice is harmless
	if v.Count("cam") != 2 {
		t.Errorf("count %d after one release, want 2", v.Count("cam"))
	}
	if _, err := v.Acquire("door", a); err != nil {
		t.Errorf("a's slot was released: %v", err)
	}
	r2()
	r3()

	// Loopback is exempt from the per-IP cap: a reverse proxy.
	v = NewViewers(Caps{PerIP: 1})
	for i := range 5 {
		if _, err := v.Acquire("cam", lo); err != nil {
			t.Fatalf("loopback %d: %v", i, err)
		}
	}
	mapped := netip.MustParseAddr("::ffff:192.168.1.10")
	if _, err := v.Acquire("cam", mapped); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Acquire("cam", a); !errors.Is(err, ErrFull) {
		t.Errorf("IPv4-mapped and plain IPv4 must count as one address: %v", err)
	}
}

func TestViewersConcurrent(t *testing.T) {
	v := NewViewers(Caps{PerFeed: 10})
	var wg sync.WaitGroup
	var got atomic.Int64
	var maxSeen atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				rel, err := v.Acquire("cam", netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
				if err != nil {
					continue
				}
				n := got.Add(1)
				for {
					m := maxSeen.Load()
					if n <= m || maxSeen.CompareAndSwap(m, n) {
						break
					}
				}
				got.Add(-1)
				rel()
			}
		}()
	}
	wg.Wait()
	if maxSeen.Load() > 10 {
		t.Errorf("%d viewers at once, cap 10", maxSeen.Load())
	}
	if v.Count("cam") != 0 {
		t.Errorf("%d slots leaked", v.Count("cam"))
	}
}

func TestReject(t *testing.T) {
	w := httptest.NewRecorder()
	Reject(w, &FullError{Limit: "feed", Feed: "cam", Max: 32})
	if w.Code != 503 || w.Header().Get("Retry-After") != "5" ||
		w.Body.String() != "camfeed: feed \"cam\" already has its maximum of 32 viewers; try again later\n" {
		t.Errorf("%d %q %q", w.Code, w.Header(), w.Body.String())
	}
}

func TestRemoteIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.2:5000":    "192.168.1.2",
		"[::ffff:10.0.0.1]:1": "10.0.0.1",
		"[fd00::1]:80":        "fd00::1",
		"10.0.0.3":            "10.0.0.3",
		"@":                   "invalid IP",
		"/run/camfeed/x.sock": "invalid IP",
	} {
		if got := RemoteIP(in).String(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.MaxViewersPerIP = -1
	c.WriteTimeout = 0
	c.MaxBodyBytes = 10
	want := "limits.max_viewers_per_ip: -1 is negative; 0 means no limit\n" +
		"limits.max_body_bytes: 10 must be between 4KiB and 64MiB\n" +
		"limits.write_timeout: 0s must be between 100ms and 10m"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}

	c = Default()
	c.MaxHeaderBytes = 4096 // net/http cannot enforce less than its 4 KiB of slop
	c.MaxConnsPerIP = -1
	c.MaxAuthFailuresPerIP = -2
	c.MaxPasswordChecks = 0
	c.MaxExport = 48 * time.Hour
	want = "limits.max_header_bytes: 4096 must be between 8KiB and 1MiB\n" +
		"limits.max_conns_per_ip: -1 is negative; 0 means no limit\n" +
		"limits.max_auth_failures_per_ip: -2 is negative; 0 means no limit\n" +
		"limits.max_password_checks: 0 must be between 1 and 64\n" +
		"limits.max_export: 48h0m0s must be between 1s and 24h"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// serve starts c.Server(h) on a loopback port and returns its address.
func serve(t *testing.T, c Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server(h)
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

func fast() Config {
	c := Default()
	c.ReadHeaderTimeout = 300 * time.Millisecond
	c.ReadTimeout = 300 * time.Millisecond
	c.WriteTimeout = 300 * time.Millisecond
	c.MaxBodyBytes = 4 << 10
	c.MaxHeaderBytes = 8 << 10
	return c
}

// TestSlowloris dribbles a request's headers a byte at a time, the classic
// slowloris attack, and expects the server to hang up at the header
// timeout without ever running the handler.
func TestSlowloris(t *testing.T) {
	var ran atomic.Bool
	addr := serve(t, fast(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran.Store(true) }))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, c) // returns when the server closes
		closed <- time.Since(start)
	}()
	req := "GET /cam/stream.h264 HTTP/1.1\r\nHost: pi\r\nX-Slow: " + strings.Repeat("a", 200)
	for i := 0; i < len(req); i++ {
		if _, err := c.Write([]byte{req[i]}); err != nil {
			break // cut off: good
		}
		select {
		case d := <-closed:
			closed <- d
			i = len(req)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("still sending after 5s: the server never hung up")
		}
	}
	select {
	case d := <-closed:
		if d > 2*time.Second {
			t.Errorf("hung up after %v; the header timeout is 300ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept a slowloris connection open")
	}
	if ran.Load() {
		t.Error("the handler ran for an incomplete request")
	}
}

// TestHostileHeaderLimit: max_header_bytes is the real limit on the
// request line and headers together, not 4 KiB more (net/http's slop).
func TestHostileHeaderLimit(t *testing.T) {
	c := Default()
	addr := serve(t, c, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	status := func(size int) int {
		t.Helper()
		head := "GET / HTTP/1.1\r\nHost: pi\r\nX-Big: "
		req := head + strings.Repeat("a", size-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
		if len(req) != size {
			t.Fatalf("built %d bytes, want %d", len(req), size)
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", size, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(c.MaxHeaderBytes); got != http.StatusOK {
		t.Errorf("headers of exactly max_header_bytes (%d): status %d, want 200", c.MaxHeaderBytes, got)
	}
	if got := status(c.MaxHeaderBytes + 1); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers one byte over max_header_bytes: status %d, want 431", got)
	}
}

func bodyHandler() http.Handler {
	return BodyLimit(4<<10, 300*time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			BodyError(w, err)
			return
		}
		fmt.Fprintf(w, "%d bytes", len(b))
	}))
}

func TestBodyLimit(t *testing.T) {
	addr := serve(t, fast(), bodyHandler())
	url := "http://" + addr + "/cam/whep"
	tests := []struct {
		name string
		body io.Reader
		code int
	}{
		{"small", strings.NewReader("v=0\r\n"), 200},
		{"announced too large", strings.NewReader(strings.Repeat("x", 5<<10)), 413},
		{"chunked too large", io.MultiReader(strings.NewReader(strings.Repeat("x", 5<<10))), 413},
	}
	for _, tt := range tests {
		resp, err := http.Post(url, "application/sdp", tt.body)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.code)
		}
	}
}

// TestSlowBody sends headers promising a body and then stalls.
func TestSlowBody(t *testing.T) {
	addr := serve(t, fast(), bodyHandler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /cam/whep HTTP/1.1\r\nHost: pi\r\nContent-Length: 100\r\n\r\nv=0")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v; the body timeout is 300ms", d)
	}
}

// TestStreamWriteDeadline: a viewer that never reads is dropped after the
// write timeout, while the stream itself has no overall limit.
func TestStreamWriteDeadline(t *testing.T) {
	c := fast()
	result := make(chan error, 1)
	addr := serve(t, c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := NewStreamWriter(w, c.WriteTimeout)
		chunk := make([]byte, 64<<10)
		for range 4096 { // at most 256 MiB, far beyond any socket buffer
			if _, err := sw.Write(chunk); err != nil {
				result <- err
				return
			}
		}
		result <- nil
	}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /cam/stream.h264 HTTP/1.1\r\nHost: pi\r\n\r\n")
	// ...and never read.
	select {
	case err := <-result:
		if err == nil {
			t.Fatal("wrote 256 MiB to a viewer that reads nothing")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write to a stalled viewer never timed out")
	}
}

func TestDeadlineConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	accepted := make(chan struct{})
	defer func() { close(stop); <-accepted }()
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err == nil {
			<-stop // never reads
			c.Close()
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := DeadlineConn(raw, 200*time.Millisecond)
	chunk := make([]byte, 64<<10)
	start := time.Now()
	for range 4096 {
		if _, err = c.Write(chunk); err != nil {
			break
		}
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("too slow")
	}
}

func TestAdmit(t *testing.T) {
	v := NewViewers(Caps{PerFeed: 1})
	r := httptest.NewRequest("GET", "/cam/stream.h264", nil)
	r.RemoteAddr = "192.168.1.5:40000"
	release, err := v.Admit(httptest.NewRecorder(), r, "cam")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if _, err := v.Admit(w, r, "cam"); !errors.Is(err, ErrFull) || w.Code != 503 {
		t.Errorf("second viewer: %v, %d", err, w.Code)
	}
	release()
	if _, err := v.Admit(httptest.NewRecorder(), r, "cam"); err != nil {
		t.Errorf("after release: %v", err)
	}
}

// TestHostileStalledBody declares a body, sends one byte of it and
// stops, on handlers that never read it (a 401, /healthz) as well as one
// that does. Before BodyLimit read bodies itself, net/http drained the
// rest after the handler with no deadline, and no answer ever came.
func TestHostileStalledBody(t *testing.T) {
	c := fast()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /cam/stream.h264", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized) // as auth does, without reading
	})
	mux.Handle("POST /cam/whep", bodyHandler())
	addr := serve(t, c, BodyLimit(c.MaxBodyBytes, c.ReadTimeout)(mux))
	for _, req := range []string{
		"GET /healthz HTTP/1.1\r\nHost: pi\r\nContent-Length: 1000\r\n\r\nx",
		"GET /cam/stream.h264 HTTP/1.1\r\nHost: pi\r\nContent-Length: 4000\r\n\r\nx",
		"POST /cam/whep HTTP/1.1\r\nHost: pi\r\nContent-Length: 100\r\n\r\nv",
		"POST /api/v1/status HTTP/1.1\r\nHost: pi\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	} {
		line, _, _ := strings.Cut(req, "\r\n")
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, req)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: no answer to a stalled body: %v", line, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("%s: status %d, want 408", line, resp.StatusCode)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: connection left open after a 408 (%v)", line, err)
		}
		conn.Close()
	}
}

// TestBodyReachesHandler: a body read up front is still the handler's,
// on any method, and a stream after it is not cut by the read deadline.
func TestBodyReachesHandler(t *testing.T) {
	c := fast()
	addr := serve(t, c, BodyLimit(c.MaxBodyBytes, c.ReadTimeout)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s;", r.Method, b)
		w.(http.Flusher).Flush()
		select { // outlive the read timeout: the context must stay alive
		case <-time.After(3 * c.ReadTimeout):
			io.WriteString(w, "alive")
		case <-r.Context().Done():
			io.WriteString(w, "cancelled")
		}
	})))
	for _, m := range []string{"POST", "GET"} {
		req, _ := http.NewRequest(m, "http://"+addr+"/x", strings.NewReader("hello"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := m + " hello;alive"; string(b) != want {
			t.Errorf("got %q, want %q", b, want)
		}
	}
}

// TestHostileConnLimit opens more connections from one address than the
// cap allows: the extra ones are closed at once, the others work, and
// closing one frees its slot.
func TestHostileConnLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := ConnLimit(inner, 3)
	ln.Exempt = func(netip.Addr) bool { return false } // count loopback here
	s := Default().Server(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	defer func() { s.Close(); <-done }()

	addr := inner.Addr().String()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	waitFor(t, func() bool { return ln.Open(lo) == 3 })
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	over.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(over, "GET / HTTP/1.1\r\nHost: pi\r\n\r\n")
	if n, err := over.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("a fourth connection was served (%d, %v)", n, err)
	}
	over.Close()
	if ln.Refused() != 1 {
		t.Errorf("refused %d, want 1", ln.Refused())
	}
	// A held connection works.
	io.WriteString(held[0], "GET / HTTP/1.1\r\nHost: pi\r\n\r\n")
	held[0].SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("held connection: %v", err)
	}
	resp.Body.Close()
	// Closing one frees a slot.
	held[1].Close()
	waitFor(t, func() bool { return ln.Open(lo) == 2 })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, c)
	waitFor(t, func() bool { return ln.Open(lo) == 3 })
	if ln.Refused() != 1 {
		t.Errorf("refused %d after a slot was freed, want 1", ln.Refused())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostileNonReadingClient: a client that asks for a large response
// (a recording) and never reads it is cut off by DeadlineWriter instead of
// holding the handler forever.
func TestHostileNonReadingClient(t *testing.T) {
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = DeadlineWriter(w, 200*time.Millisecond)
		chunk := make([]byte, 64<<10)
		for range 1 << 12 { // 256 MiB: far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("256 MiB were written to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler still writes 30 s later")
	}
}
