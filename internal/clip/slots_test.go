package clip

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/camfeed/camfeed/internal/auth"
)

// TestWho: behind the auth layer, a download counts against the user it
// logged in as, whatever its address; an anonymous one against its
// address.
func TestWho(t *testing.T) {
	a, err := auth.New(auth.Config{
		Users:         []auth.User{{Name: "mallory", Password: "plain:pw", Permissions: []string{"read:cam"}}},
		AnonymousRead: map[string]bool{"door": true},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	h := a.Middleware(auth.Read, func(r *http.Request) string { return r.PathValue("feed") })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = who(r) }))
	mux := http.NewServeMux()
	mux.Handle("GET /{feed}/clip.mp4", h)
	for _, tc := range []struct {
		path, user, remote, want string
	}{
		{"/cam/clip.mp4", "mallory", "192.0.2.1:1234", "user mallory"},
		{"/cam/clip.mp4", "mallory", "192.0.2.2:999", "user mallory"},
		{"/door/clip.mp4", "", "192.0.2.3:1234", "address 192.0.2.3"},
		{"/door/clip.mp4", "", "[2001:db8::1]:80", "address 2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.RemoteAddr = tc.remote
		if tc.user != "" {
			r.SetBasicAuth(tc.user, "pw")
		}
		got = ""
		mux.ServeHTTP(httptest.NewRecorder(), r)
		if got != tc.want {
			t.Errorf("%s as %q from %s: counted as %q, want %q", tc.path, tc.user, tc.remote, got, tc.want)
		}
	}
}

// TestSlots: the limits are independent, and releasing twice is harmless.
func TestSlots(t *testing.T) {
	s := newSlots(Config{MaxConcurrent: 3, MaxPerFeed: 2, MaxPerUser: 1, MaxSaving: 1})
	r1, err := s.download("cam", "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.download("cam", "a"); err == nil || err.(*busyError).code != http.StatusTooManyRequests {
		t.Errorf("second of one user: %v", err)
	}
	r2, _ := s.download("cam", "b")
	if _, err := s.download("cam", "c"); err == nil || err.(*busyError).code != http.StatusServiceUnavailable {
		t.Errorf("third of one feed: %v", err)
	}
	r3, _ := s.download("door", "c")
	if _, err := s.download("yard", "d"); err != errBusy {
		t.Errorf("past the global cap: %v", err)
	}
	save, err := s.save()
	if err != nil {
		t.Errorf("a save with every download slot taken: %v", err)
	}
	if _, err := s.save(); err == nil {
		t.Error("a second save past MaxSaving")
	}
	save()
	r1()
	r1()
	if _, err := s.download("cam", "a"); err != nil {
		t.Errorf("after release: %v", err)
	}
	r2()
	r3()
}
