package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHostilePasswordFlood replays the attack of issue 10: 400 wrong
// passwords, 16 at a time, from one address. Once the address's budget
// is spent the rest are answered 429 with Retry-After and never hashed;
// a viewer already logged in from that address keeps watching, and a new
// login from elsewhere is checked at once.
func TestHostilePasswordFlood(t *testing.T) {
	cfg := lanConfig(t)
	cfg.FailuresPerIP, cfg.Failures, cfg.PasswordChecks = 10, 1000, 2
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	srv := httptest.NewServer(a.Middleware(Read, func(*http.Request) string { return "cam" })(ok))
	defer srv.Close()
	get := func(user, pw string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/cam/stream.h264", nil)
		req.SetBasicAuth(user, pw)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("alice", "alice-pw"); r.StatusCode != 200 { // logged in before the flood
		t.Fatalf("alice: %d", r.StatusCode)
	}
	before := a.hashed.Load()

	var codes [600]atomic.Int64
	var retry atomic.Value
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				r := get("alice", "guess-"+strconv.Itoa(i))
				codes[r.StatusCode].Add(1)
				if r.StatusCode == 429 {
					retry.Store(r.Header.Get("Retry-After"))
				}
			}
		})
	}
	for i := range 400 {
		next <- i
	}
	close(next)
	wg.Wait()

	hashed := a.hashed.Load() - before
	if hashed > 10+16 { // the budget, plus what was in flight when it ran out
		t.Errorf("%d wrong passwords hashed, want at most 26", hashed)
	}
	if codes[429].Load() < 400-26 || codes[401].Load() != int64(hashed) {
		t.Errorf("%d answered 429 and %d 401 (%d hashed)", codes[429].Load(), codes[401].Load(), hashed)
	}
	if s, _ := retry.Load().(string); s == "" || s == "0" {
		t.Errorf("Retry-After %q", s)
	}
	if unauth, _ := a.Refused(); a.Throttled() != uint64(codes[429].Load()) || unauth < uint64(hashed) {
		t.Errorf("counters: throttled %d, unauthenticated %d", a.Throttled(), unauth)
	}
	// Alice's own address is throttled for new passwords, but her cached
	// login still plays.
	if r := get("alice", "alice-pw"); r.StatusCode != 200 {
		t.Errorf("alice during the lockout: %d", r.StatusCode)
	}
	// A login from another address is checked.
	if _, err := a.Check("", Read, Credentials{User: "dave", Password: "dave-pw", From: netip.MustParseAddr("192.168.1.50")}); err != nil {
		t.Errorf("dave from elsewhere: %v", err)
	}
}

// TestFailuresOverall: a guesser with many addresses meets the overall
// budget.
func TestFailuresOverall(t *testing.T) {
	cfg := lanConfig(t)
	cfg.FailuresPerIP, cfg.Failures = 0, 5
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		from := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		if _, err := a.Check("", Read, Credentials{User: "alice", Password: "x", From: from}); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	_, err = a.Check("", Read, Credentials{User: "alice", Password: "alice-pw", From: netip.MustParseAddr("10.0.1.1")})
	var th *ThrottledError
	if !errors.As(err, &th) || th.RetryAfter <= 0 || th.RetryAfter > 13*time.Second {
		t.Fatalf("after the overall budget: %v", err)
	}
	if th.Error() != "too many wrong passwords; try again in 12 s" {
		t.Errorf("message %q", th.Error())
	}
	// A token costs no hashing and is never throttled.
	if _, err := a.Check("door", Read, Credentials{Token: bobToken}); err != nil {
		t.Errorf("token: %v", err)
	}
}

// TestThrottleRefills: the budget comes back at limit per minute.
func TestThrottleRefills(t *testing.T) {
	tr := throttle{perIP: 6}
	ip := netip.MustParseAddr("192.168.1.9")
	now := time.Unix(1000, 0)
	for range 6 {
		if err := tr.allow(ip, now); err != nil {
			t.Fatal(err)
		}
		tr.fail(ip, now)
	}
	err := tr.allow(ip, now)
	var th *ThrottledError
	if !errors.As(err, &th) || th.RetryAfter != 10*time.Second {
		t.Fatalf("spent: %v", err)
	}
	if err := tr.allow(netip.MustParseAddr("192.168.1.10"), now); err != nil {
		t.Errorf("another address: %v", err)
	}
	if err := tr.allow(ip, now.Add(10*time.Second)); err != nil {
		t.Errorf("after 10 s one guess is back: %v", err)
	}
}

// TestVerifiedCacheEveryPath: a viewer's password is hashed once,
// whichever protocol carries it (HTTP Basic through Middleware, RTSP
// Basic through Allow); tokens are never hashed.
func TestVerifiedCacheEveryPath(t *testing.T) {
	a, err := New(lanConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(Read, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 50 {
		r := httptest.NewRequest("GET", "/cam/stream.h264", nil)
		r.SetBasicAuth("alice", "alice-pw")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("http: %d", w.Code)
		}
		if !a.Allow("cam", Read, "alice", "alice-pw") {
			t.Fatal("rtsp: refused")
		}
		if !a.Allow("cam", Read, "dave", "dave-pw") {
			t.Fatal("rtsp argon2id: refused")
		}
		if _, err := a.Check("door", Read, Credentials{Token: bobToken}); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.hashed.Load(); n != 2 {
		t.Errorf("%d password hashes for two users, want 2", n)
	}
}

// TestHashSlots: at most PasswordChecks hashes run at once; a check that
// cannot get a slot in time is refused as busy instead of queueing
// forever.
func TestHashSlots(t *testing.T) {
	cfg := lanConfig(t)
	cfg.PasswordChecks = 1
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cap(a.slots) != 1 {
		t.Fatalf("%d slots", cap(a.slots))
	}
	a.slots <- struct{}{} // a hash in progress that never ends
	start := time.Now()
	_, err = a.Check("", Read, Credentials{User: "alice", Password: "new"})
	var th *ThrottledError
	if !errors.As(err, &th) || !th.Busy {
		t.Fatalf("got %v, want busy", err)
	}
	if d := time.Since(start); d < slotWait/2 {
		t.Errorf("gave up after %v", d)
	}
	w := httptest.NewRecorder()
	Refuse(w, err)
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || w.Body.String() != "camfeed: too many logins at once; try again in 1 s\n" {
		t.Errorf("%d %q %q", w.Code, w.Header(), w.Body.String())
	}
	a.slots.release()
	if _, err := a.Check("", Read, Credentials{User: "alice", Password: "alice-pw"}); err != nil {
		t.Errorf("after the slot freed: %v", err)
	}
}
