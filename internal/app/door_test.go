package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/gorilla/websocket"
	pionwebrtc "github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/limits"
)

// The credential and limit cases every protocol is tried with.
const (
	caseAnonymous = "no credentials"
	caseWrongPass = "wrong password"
	caseWrongUser = "wrong user"
	caseRight     = "right user"
	caseOverIP    = "over the per-IP limit"
	caseOverFeed  = "over the per-feed limit"
)

// endpoint is one way in: try makes one attempt as user/pass and returns
// the protocol's answer (HTTP status, RTSP status), and a func that ends
// the session it may have opened.
type endpoint struct {
	name string
	// want overrides the expected answers (RTSP answers 401 to a user
	// without the right, as Basic cannot tell the two apart; a refused
	// RTSP session is 453).
	want map[string]int
	try  func(t *testing.T, ta *testApp, user, pass string) (int, func())
}

var defaultWant = map[string]int{
	caseAnonymous: 401, caseWrongPass: 401, caseWrongUser: 403, caseRight: 200, caseOverIP: 503, caseOverFeed: 503,
}

func (e endpoint) expect(c string) int {
	if v, ok := e.want[c]; ok {
		return v
	}
	return defaultWant[c]
}

// httpGet tries a GET; 101 (a WebSocket) and 201 count as 200.
func httpTry(method, path string) func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
	return func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, method, ta.url(path), nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return res.StatusCode, func() { cancel(); res.Body.Close() }
	}
}

func wsTry(path string) func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
	return func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
		h := http.Header{}
		if user != "" {
			req, _ := http.NewRequest("GET", "/", nil)
			req.SetBasicAuth(user, pass)
			h = req.Header
		}
		c, res, err := websocket.DefaultDialer.Dial("ws://"+ta.addrs["http"].String()+path, h)
		if err == nil {
			return 200, func() { c.Close() }
		}
		if res == nil {
			t.Fatalf("ws %s: %v", path, err)
		}
		return res.StatusCode, func() {}
	}
}

func rtspTry(path string) func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
	return func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
		u := "rtsp://"
		if user != "" {
			u += user + ":" + pass + "@"
		}
		pu, err := base.ParseURL(u + ta.addrs["rtsp"].String() + path)
		if err != nil {
			t.Fatal(err)
		}
		proto := gortsplib.ProtocolTCP
		// A wrong password costs a bcrypt hash, slow under -race on a
		// busy machine: a generous functional timeout.
		c := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		code := func(err error) int {
			var bad liberrors.ErrClientBadStatusCode
			if errors.As(err, &bad) {
				return int(bad.Code)
			}
			t.Fatalf("rtsp %s: %v", path, err)
			return 0
		}
		desc, _, err := c.Describe(pu)
		if err != nil {
			c.Close()
			return code(err), func() {}
		}
		if _, err := c.Setup(desc.BaseURL, desc.Medias[0], 0, 0); err != nil {
			c.Close()
			return code(err), func() {}
		}
		if _, err := c.Play(nil); err != nil {
			c.Close()
			return code(err), func() {}
		}
		return 200, c.Close
	}
}

// whepTry posts a WHEP offer from a pion peer; 201 counts as 200. Done
// hangs up with DELETE, as a browser leaving the page does.
func whepTry(path string) func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
	return func(t *testing.T, ta *testApp, user, pass string) (int, func()) {
		pc, err := pionwebrtc.NewPeerConnection(pionwebrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromKind(pionwebrtc.RTPCodecTypeVideo, pionwebrtc.RTPTransceiverInit{Direction: pionwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		gathered := pionwebrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(offer); err != nil {
			t.Fatal(err)
		}
		<-gathered
		req, _ := http.NewRequest("POST", ta.url(path), strings.NewReader(pc.LocalDescription().SDP))
		req.Header.Set("Content-Type", "application/sdp")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			pc.Close()
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			pc.Close()
			return res.StatusCode, func() {}
		}
		// Connect, so that video flows and the session counts bytes.
		if err := pc.SetRemoteDescription(pionwebrtc.SessionDescription{Type: pionwebrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
			t.Fatal(err)
		}
		loc := res.Header.Get("Location")
		return 200, func() {
			req, _ := http.NewRequest("DELETE", ta.url("/cam/"+loc), nil)
			req.SetBasicAuth(user, pass)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
			pc.Close()
		}
	}
}

// tcpTry connects to the raw TCP output, which has no credentials (an
// address allow-list): it answers with video, or with the door's refusal
// in words before it closes.
func tcpTry(t *testing.T, ta *testApp, _, _ string) (int, func()) {
	c, err := net.Dial("tcp", ta.addrs["tcp"].String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).Peek(8)
	if err != nil && !errors.Is(err, io.EOF) {
		c.Close()
		t.Fatalf("tcp: %v", err)
	}
	if strings.HasPrefix(string(line), "camfeed:") {
		c.Close()
		return 503, func() {}
	}
	return 200, func() { c.Close() }
}

var tcpWant = map[string]int{caseAnonymous: 200, caseWrongPass: 200, caseWrongUser: 200}

// doorEndpoints are every protocol's ways in for feed cam.
func doorEndpoints() []endpoint {
	rtspWant := map[string]int{caseWrongUser: 401, caseOverIP: 453, caseOverFeed: 453}
	return []endpoint{
		{name: "GET /cam/stream.h264", try: httpTry("GET", "/cam/stream.h264")},
		{name: "GET /stream.h264", try: httpTry("GET", "/stream.h264")},
		{name: "GET / (a player)", try: httpTry("GET", "/")},
		{name: "GET /cam/ws (MSE)", try: wsTry("/cam/ws")},
		{name: "GET /cam/index.m3u8 (LL-HLS)", try: httpTry("GET", "/cam/index.m3u8")},
		{name: "GET /cam/snapshot.jpg", try: httpTry("GET", "/cam/snapshot.jpg?keyframe=1")},
		{name: "GET /cam/clip.mp4", try: httpTry("GET", "/cam/clip.mp4?seconds=1")},
		{name: "RTSP /cam", want: rtspWant, try: rtspTry("/cam")},
		{name: "POST /cam/whep (WebRTC)", try: whepTry("/cam/whep")},
		{name: "raw TCP", want: tcpWant, try: tcpTry},
	}
}

// startDoorApp runs camfeed with RTSP and raw TCP on, users alice (read
// cam) and bob (read door), no anonymous reading, and caps.
func startDoorApp(t *testing.T, caps limits.Caps, mutate ...func(*config.Config)) *testApp {
	hash := testHash(t, "s3cret")
	no := false
	ta := startApp(t, func(c *config.Config) {
		c.RTSP, c.RTSPUDPRTP, c.RTSPUDPRTCP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		c.RTSPTransports = []string{"tcp"}
		c.WebRTC = "127.0.0.1:0"
		c.TCP = "127.0.0.1:0"
		c.TCPAllow = []string{"127.0.0.1/32"}
		door := *c.Feeds[config.DefaultFeed]
		c.Feeds["door"] = &door
		c.Users = []auth.User{
			{Name: "alice", Password: hash, Permissions: []string{"read:cam"}},
			{Name: "bob", Password: hash, Permissions: []string{"read:door"}},
		}
		c.AnonymousRead = &no
		c.Limits.MaxViewersPerFeed, c.Limits.MaxViewersPerIP, c.Limits.MaxViewers = caps.PerFeed, caps.PerIP, caps.Total
		c.Limits.LimitLoopback = caps.LimitLoopback
		for _, m := range mutate {
			m(c)
		}
	})
	ta.waitFrames(t, "cam", 5)
	return ta
}

// TestDoorTable runs every protocol's way in through every credential
// case and both limits, and checks the answer each gives.
func TestDoorTable(t *testing.T) {
	t.Parallel()
	open := startDoorApp(t, limits.Caps{})
	perIP := startDoorApp(t, limits.Caps{PerIP: 1, LimitLoopback: true})
	perFeed := startDoorApp(t, limits.Caps{PerFeed: 1})
	creds := map[string][2]string{
		caseAnonymous: {"", ""}, caseWrongPass: {"alice", "wrong"}, caseWrongUser: {"bob", "s3cret"},
		caseRight: {"alice", "s3cret"}, caseOverIP: {"alice", "s3cret"}, caseOverFeed: {"alice", "s3cret"},
	}
	for _, e := range doorEndpoints() {
		for _, c := range []string{caseAnonymous, caseWrongPass, caseWrongUser, caseRight, caseOverIP, caseOverFeed} {
			t.Run(e.name+"/"+c, func(t *testing.T) {
				ta := open
				switch c {
				case caseOverIP:
					ta = perIP
				case caseOverFeed:
					ta = perFeed
				}
				holder := func() {}
				if c == caseOverIP || c == caseOverFeed {
					// Someone else holds the one place: a raw HTTP viewer.
					code, done := httpTry("GET", "/cam/stream.h264")(t, ta, "alice", "s3cret")
					holder = done
					if code != 200 {
						done()
						t.Fatalf("the viewer holding the place: %d", code)
					}
				}
				got, done := e.try(t, ta, creds[c][0], creds[c][1])
				done()
				holder()
				if want := e.expect(c); got != want {
					t.Errorf("%s, %s: %d, want %d", e.name, c, got, want)
				}
				if strings.Contains(e.name, "LL-HLS") {
					return // its session lasts until the player stops asking (10 s)
				}
				// Every place is given back when its viewer leaves (an
				// LL-HLS session of an earlier case may still be open).
				waitFor(t, "the door to empty", func() bool { return ta.viewers.Total() == ta.door.Count("cam")[door.HLS] })
			})
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEveryRouteHasAnAccessClass walks the registered routes: each has a
// valid class, and only routes without video or secrets are public.
func TestEveryRouteHasAnAccessClass(t *testing.T) {
	t.Parallel()
	ta := startApp(t, func(c *config.Config) { c.WebRTC = "127.0.0.1:0" })
	public := map[string]bool{"GET /healthz": true, "GET /time": true, "OPTIONS /time": true}
	for _, r := range ta.mux.Routes() {
		if !r.Access.Valid() {
			t.Errorf("%s has no access class", r.Pattern)
			continue
		}
		if !r.Access.Open() {
			continue
		}
		if !public[r.Pattern] && !strings.HasPrefix(r.Pattern, "GET /assets/") && !strings.HasPrefix(r.Pattern, "OPTIONS ") {
			t.Errorf("%s is public; only health, time, assets and CORS preflights may be", r.Pattern)
		}
	}
	if len(ta.mux.Routes()) < 20 {
		t.Errorf("only %d routes registered", len(ta.mux.Routes()))
	}
}

// TestFeedNamesCannotShadowRoutes: the names a feed may not take are
// the routes' own first segments, so a new route reserves its name.
func TestFeedNamesCannotShadowRoutes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"assets", "api", "healthz", "metrics", "stream.h264", "time"} {
		cfg := config.Default()
		cfg.HTTP = "127.0.0.1:0"
		cfg.Feeds[config.DefaultFeed].Source = "test"
		fc := *cfg.Feeds[config.DefaultFeed]
		cfg.Feeds[name] = &fc
		_, err := New(cfg, "test", slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("feed %q: the name is taken", name)) {
			t.Errorf("feed %q: %v", name, err)
		}
	}
}

// TestDoorAccountsEveryProtocol: sessions of different protocols show in
// the status with the same fields, and leave with bytes counted.
func TestDoorAccountsEveryProtocol(t *testing.T) {
	t.Parallel()
	ta := startDoorApp(t, limits.Caps{})
	var closers []func()
	for _, e := range doorEndpoints() {
		if e.name == "GET /cam/snapshot.jpg" || e.name == "GET /cam/clip.mp4" || e.name == "GET /cam/index.m3u8 (LL-HLS)" {
			continue // over before we look
		}
		code, done := e.try(t, ta, "alice", "s3cret")
		if code != 200 {
			t.Fatalf("%s: %d", e.name, code)
		}
		closers = append(closers, done)
	}
	waitFor(t, "every session to be counted", func() bool {
		c := ta.door.Count("cam")
		return c[door.HTTP] == 3 && c[door.MSE] == 1 && c[door.RTSP] == 1 && c[door.TCP] == 1 && c[door.WebRTC] == 1
	})
	waitFor(t, "every session to be sent video", func() bool {
		for _, in := range ta.door.Sessions("cam") {
			if in.Bytes == 0 {
				return false
			}
		}
		return true
	})
	for _, in := range ta.door.Sessions("cam") {
		if in.Protocol != door.TCP && in.User != "alice" {
			t.Errorf("session %+v: no user", in)
		}
	}
	for _, c := range closers {
		c()
	}
	waitFor(t, "every session to leave", func() bool { return ta.viewers.Total() == 0 })
	for proto, tot := range ta.door.Totals("cam") {
		if tot.Sessions == 0 || tot.Bytes == 0 {
			t.Errorf("%s: %+v, want sessions and bytes", proto, tot)
		}
	}
	if !strings.Contains(ta.logs.String(), "viewer left") {
		t.Error("no viewer-left line")
	}
}

// TestCrossOriginWritesRefused: a web page on another site cannot make a
// household member's browser save a clip, whatever the output's own
// checks; a script without an Origin (curl, Home Assistant) can.
func TestCrossOriginWritesRefused(t *testing.T) {
	t.Parallel()
	ta := startApp(t, func(c *config.Config) { c.ClipsDir = t.TempDir() })
	ta.waitFrames(t, "cam", 40)
	post := func(hdr map[string]string) int {
		req, _ := http.NewRequest("POST", ta.url("/api/v1/feeds/cam/clips?seconds=1"), nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
	if code := post(nil); code == http.StatusForbidden {
		t.Errorf("POST without an Origin: %d", code)
	}
}

// TestRTSPWrongPasswordsThrottled: wrong RTSP passwords count against the
// client's address as HTTP ones do, so a guesser is refused without a
// password hash being computed.
func TestRTSPWrongPasswordsThrottled(t *testing.T) {
	t.Parallel()
	ta := startDoorApp(t, limits.Caps{}, func(c *config.Config) { c.Limits.MaxAuthFailuresPerIP = 2 })
	start := time.Now()
	for range 4 {
		if code, done := rtspTry("/cam")(t, ta, "alice", "guess"); code != 401 {
			done()
			t.Fatalf("wrong RTSP password: %d, want 401", code)
		}
	}
	// A burst of 2, then one more every 30 s: on a machine so busy that
	// the four tries take that long, the budget has grown by as much.
	budget := 2 + uint64(time.Since(start)/(30*time.Second))
	if n := ta.authz.Load().Hashed(); n > budget {
		t.Errorf("4 wrong RTSP passwords from one address in %v, with a budget of 2 a minute: %d hashed, want %d", time.Since(start).Round(time.Second), n, budget)
	}
}
