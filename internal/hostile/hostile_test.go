package hostile

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
)

// TestHostileSlowBodies: 200 connections each declare a request body,
// send one byte of it and stop, on paths that read bodies and paths that
// do not (even /healthz). Each must get a 408 and be closed once
// read_timeout passes; before, none was ever answered.
func TestHostileSlowBodies(t *testing.T) {
	c := start(t, func(cfg *config.Config) { cfg.Limits.ReadTimeout = time.Second })
	base := baseline(t, c)

	reqs := []string{
		"POST /cam/whep HTTP/1.1\r\nHost: pi\r\nContent-Type: application/sdp\r\nContent-Length: 5000\r\n\r\nv",
		"POST /api/v1/status HTTP/1.1\r\nHost: pi\r\nContent-Length: 100000\r\n\r\n{",
		"GET /healthz HTTP/1.1\r\nHost: pi\r\nContent-Length: 1000\r\n\r\nx",
		"GET /cam/stream.h264 HTTP/1.1\r\nHost: pi\r\nContent-Length: 200000\r\n\r\nx",
	}
	const n = 200
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for i := range n {
		conn, err := net.Dial("tcp", c.addrs["http"].String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		if _, err := io.WriteString(conn, reqs[i%len(reqs)]); err != nil {
			t.Fatal(err)
		}
	}
	firstPicture(t, c, client(""), "", "") // while they all hang

	var wg sync.WaitGroup
	var bad atomic.Int64
	for i, conn := range conns {
		wg.Go(func() {
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			line, _, _ := strings.Cut(reqs[i%len(reqs)], "\r\n")
			if err != nil {
				if bad.Add(1) <= 3 {
					t.Errorf("%s: no answer: %v", line, err)
				}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				if bad.Add(1) <= 3 {
					t.Errorf("%s: status %d, want 408", line, resp.StatusCode)
				}
				return
			}
			if _, err := br.ReadByte(); err != io.EOF {
				if bad.Add(1) <= 3 {
					t.Errorf("%s: connection still open after the 408 (%v)", line, err)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d stalled bodies were not answered 408 and closed", bad.Load(), n)
	}
	for _, conn := range conns {
		conn.Close()
	}
	settled(t, base)
}

// TestHostileConnsPerIP: one address opens connections and holds them
// without a request. Past max_conns_per_ip the next ones are closed at
// once; a viewer from another address is served meanwhile; the
// connections' goroutines are gone once the address lets go. Loopback is
// exempt (a local reverse proxy), so this dials camfeed's non-loopback
// address.
func TestHostileConnsPerIP(t *testing.T) {
	ip := nonLoopback(t)
	c := start(t, func(cfg *config.Config) {
		cfg.HTTP = net.JoinHostPort(ip, "0")
		cfg.Limits.MaxConnsPerIP = 8
		cfg.Limits.ReadHeaderTimeout = 5 * time.Minute // the attacker's connections stay idle all test long
	})
	legit := client("127.0.0.1") // another address, dialling camfeed's
	if err := tryFirstPicture(c, legit, "", ""); err != nil {
		t.Skipf("cannot reach %s from 127.0.0.1: %v", ip, err)
	}
	waitFor(t, "the warm-up viewer to leave", func() bool { return c.viewers() == 0 })
	base := measure()

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	var held []net.Conn
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	for range 8 {
		conn, err := d.Dial("tcp", c.addrs["http"].String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	for i := range 20 {
		conn, err := d.Dial("tcp", c.addrs["http"].String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: pi\r\n\r\n")
		n, err := conn.Read(make([]byte, 64))
		conn.Close()
		if n > 0 || err == nil || isTimeout(err) {
			t.Fatalf("connection %d over the cap of 8 was served (%d bytes, %v)", 9+i, n, err)
		}
	}
	firstPicture(t, c, legit, "", "")
	// The held ones are still served.
	io.WriteString(held[0], "GET /healthz HTTP/1.1\r\nHost: pi\r\n\r\n")
	held[0].SetDeadline(time.Now().Add(20 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a connection within the cap: %v", err)
	}
	for _, conn := range held {
		conn.Close()
	}
	held = nil
	settled(t, base)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHostileWebSocket sends what the viewer never does on /cam/ws: one
// large message, a large message in small fragments, and a flood of small
// ones. camfeed must close the socket (1009, 1009, 1008) without reading
// the rest, where it once buffered a 256 MiB message whole.
func TestHostileWebSocket(t *testing.T) {
	c := start(t, nil)
	base := baseline(t, c)
	wsURL := "ws://" + c.addrs["http"].String() + "/cam/ws"

	for _, tc := range []struct {
		name string
		code int
		send func(*websocket.Conn) (int64, error)
	}{
		{"one 64 MiB frame", websocket.CloseMessageTooBig, func(ws *websocket.Conn) (int64, error) {
			w, err := ws.NextWriter(websocket.BinaryMessage)
			if err != nil {
				return 0, err
			}
			return writeUpTo(w, 64<<20) // the dialer's 64 MiB buffer: one frame
		}},
		{"64 MiB in 512-byte fragments", websocket.CloseMessageTooBig, func(ws *websocket.Conn) (int64, error) {
			w, err := ws.NextWriter(websocket.TextMessage)
			if err != nil {
				return 0, err
			}
			var sent int64
			chunk := []byte(strings.Repeat("a", 512))
			for sent < 64<<20 {
				if _, err := w.Write(chunk); err != nil {
					return sent, err
				}
				sent += int64(len(chunk))
				if f, ok := w.(interface{ Flush() error }); ok {
					if err := f.Flush(); err != nil {
						return sent, err
					}
				}
			}
			return sent, w.Close()
		}},
		{"a flood of small messages", websocket.ClosePolicyViolation, func(ws *websocket.Conn) (int64, error) {
			var sent int64
			for range 200_000 {
				if err := ws.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
					return sent, err
				}
				sent += 2
			}
			return sent, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bufSize := 1 << 10
			if strings.HasPrefix(tc.name, "one") {
				bufSize = 64<<20 + 64
			}
			dialer := websocket.Dialer{WriteBufferSize: bufSize, HandshakeTimeout: 10 * time.Second}
			ws, resp, err := dialer.Dial(wsURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			defer ws.Close()
			closed := make(chan error, 1)
			go func() {
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						closed <- err
						return
					}
				}
			}()
			attackDone := make(chan struct{})
			var sent int64
			var sendErr error
			go func() {
				defer close(attackDone)
				ws.SetWriteDeadline(time.Now().Add(60 * time.Second))
				sent, sendErr = tc.send(ws)
			}()
			firstPicture(t, c, client(""), "", "") // during the attack
			select {
			case err := <-closed:
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != tc.code {
					t.Errorf("socket ended with %v, want close code %d", err, tc.code)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("camfeed kept reading the socket")
			}
			ws.Close()
			<-attackDone
			if sendErr == nil && strings.Contains(tc.name, "MiB") {
				t.Errorf("camfeed took all %d bytes of one message", sent)
			}
			waitFor(t, "the socket's viewer to leave", func() bool { return c.viewers() == 0 })
		})
	}
	settled(t, base)
}

func writeUpTo(w io.WriteCloser, n int64) (int64, error) {
	chunk := make([]byte, 1<<20)
	var sent int64
	for sent < n {
		m, err := w.Write(chunk)
		sent += int64(m)
		if err != nil {
			return sent, err
		}
	}
	return sent, w.Close()
}

// TestHostilePasswordFlood replays issue 10's login flood: 400 wrong
// passwords, 16 at a time, from one address. Past max_auth_failures_per_ip
// they are answered 429 with Retry-After without being hashed (a 401
// means one was); a viewer who logged in before the flood keeps
// watching from the same address, and a new viewer from another address
// logs in and gets a picture during it.
func TestHostilePasswordFlood(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), 8)
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, func(cfg *config.Config) {
		cfg.Users = []auth.User{{Name: "alice", Password: string(hash), Permissions: []string{"read"}}}
		cfg.Limits.MaxAuthFailuresPerIP = 10
	})
	firstPicture(t, c, client(""), "alice", "alice-pw") // logged in before the flood
	waitFor(t, "the warm-up viewer to leave", func() bool { return c.viewers() == 0 })
	base := measure()

	var codes [600]atomic.Int64
	var retryAfter atomic.Value
	next := make(chan int)
	var wg sync.WaitGroup
	hc := client("")
	for range 16 {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest("GET", c.url("/api/v1/status"), nil)
				req.SetBasicAuth("alice", "guess-"+strconv.Itoa(i))
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[resp.StatusCode].Add(1)
				if resp.StatusCode == http.StatusTooManyRequests {
					retryAfter.Store(resp.Header.Get("Retry-After"))
				}
			}
		})
	}
	legit := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond) // arrive mid-flood
		legit <- tryFirstPicture(c, client("127.0.0.2"), "alice", "alice-pw")
	}()
	for i := range 400 {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := <-legit; err != nil {
		t.Errorf("a new login from another address during the flood: %v", err)
	}
	if hashed := codes[401].Load(); hashed > 10+16 {
		t.Errorf("%d wrong passwords were checked (401), want at most 26", hashed)
	}
	if codes[429].Load() < 400-26 {
		t.Errorf("only %d of 400 answered 429", codes[429].Load())
	}
	if s, _ := retryAfter.Load().(string); s == "" {
		t.Error("429 without Retry-After")
	}
	firstPicture(t, c, client(""), "alice", "alice-pw") // cached: not throttled
	settled(t, base)
}

// TestHostileStalledViewer: a viewer that stops reading is dropped after
// write_timeout, on the raw HTTP and TCP outputs, not after a hard-coded
// 15 s. Its receive buffer is made tiny so that camfeed's writes block
// within a second.
func TestHostileStalledViewer(t *testing.T) {
	c := start(t, func(cfg *config.Config) {
		cfg.TCP = "127.0.0.1:0"
		cfg.Limits.WriteTimeout = 500 * time.Millisecond
	})
	base := baseline(t, c)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	for _, out := range []struct{ name, addr, req string }{
		{"http", c.addrs["http"].String(), "GET /cam/stream.h264 HTTP/1.1\r\nHost: pi\r\n\r\n"},
		{"tcp", c.addrs["tcp"].String(), ""},
	} {
		conn, err := d.Dial("tcp", out.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, out.req)
		waitFor(t, out.name+" viewer to join", func() bool { return c.viewers() == 1 })
		// ...and never read. 10 s: well past the 500 ms configured,
		// well short of the 15 s that used to apply whatever was set.
		deadline := time.Now().Add(10 * time.Second)
		for c.viewers() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if c.viewers() > 0 {
			t.Fatalf("%s: a viewer that reads nothing is still connected 10 s on; write_timeout is 500ms", out.name)
		}
		firstPicture(t, c, client(""), "", "")
		conn.Close()
	}
	settled(t, base)
}

// TestHostileHeaderLimit: the request line and headers may be
// max_header_bytes long and not a byte more (net/http allows 4 KiB more
// than its MaxHeaderBytes).
func TestHostileHeaderLimit(t *testing.T) {
	c := start(t, nil)
	status := func(size int) int {
		head := "GET /healthz HTTP/1.1\r\nHost: pi\r\nX-Big: "
		req := head + strings.Repeat("a", size-len(head)-4) + "\r\n\r\n"
		conn, err := net.Dial("tcp", c.addrs["http"].String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(conn, req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", size, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limit := config.Default().Limits.MaxHeaderBytes
	if limit != 16384 {
		t.Fatalf("the documented default is 16384, not %d", limit)
	}
	if got := status(limit); got != 200 {
		t.Errorf("%d bytes of headers: %d, want 200", limit, got)
	}
	for _, size := range []int{limit + 1, 20480} {
		if got := status(size); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%d bytes of headers: %d, want 431", size, got)
		}
	}
}

// TestHostileExportSpan: an export may not ask for more than max_export;
// one request once returned a whole 66 MB archive.
func TestHostileExportSpan(t *testing.T) {
	c := start(t, func(cfg *config.Config) {
		cfg.RecordDir = t.TempDir()
		cfg.Feeds[config.DefaultFeed].Record = true
	})
	hc := client("")
	for _, q := range []string{"seconds=601", "seconds=1e9", "from=1&to=" + strconv.FormatInt(time.Now().Unix(), 10)} {
		resp, err := hc.Get(c.url("/api/v1/feeds/cam/recordings/export?" + q))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "an export may span at most 10m0s (600 seconds); ask for several\n"; resp.StatusCode != 400 || string(b) != want {
			t.Errorf("export?%s: %d %q, want 400 %q", q, resp.StatusCode, b, want)
		}
	}
}

// TestHostileViewerLogFlood: 300 viewers connecting and leaving at once
// write at most a burst of "viewer left" lines and a summary, not 300.
func TestHostileViewerLogFlood(t *testing.T) {
	c := start(t, nil)
	base := baseline(t, c)
	const n = 300
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	hc := client("")
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := hc.Get(c.url("/cam/stream.h264"))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Read(make([]byte, 1024))
			resp.Body.Close()
		})
	}
	wg.Wait()
	waitFor(t, "the viewers to leave", func() bool { return c.viewers() == 0 })
	firstPicture(t, c, hc, "", "")
	settled(t, base)
	c.stop() // flushes the summary
	// Sixteen at a time from one address is over max_viewers_per_ip (8)
	// whenever the server has not yet seen earlier ones go, so some are
	// refused; a refused viewer never joins and so never leaves.
	lines := map[string]int{}
	more := map[string]int{}
	summary := regexp.MustCompile(`more=(\d+)`)
	for _, l := range strings.Split(c.logs.String(), "\n") {
		for _, msg := range []string{"viewer left", "viewer refused"} {
			if !strings.Contains(l, `msg="`+msg+`"`) {
				continue
			}
			if m := summary.FindStringSubmatch(l); m != nil {
				k, _ := strconv.Atoi(m[1])
				more[msg] += k
				continue
			}
			lines[msg]++
		}
	}
	left := lines["viewer left"] + more["viewer left"]
	refused := lines["viewer refused"] + more["viewer refused"]
	// n attackers, the warm-up viewer and the one after.
	if lines["viewer left"] > 20 || lines["viewer refused"] > 20 || left+refused != n+2 {
		t.Errorf("%v lines and %v summed up (%d left, %d refused), want at most 20 of each and %d in all",
			lines, more, left, refused, n+2)
	}
}
