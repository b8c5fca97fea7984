package viewer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
)

type feeds map[string]*hub.Hub

func (f feeds) Hub(n string) (*hub.Hub, bool) { h, ok := f[n]; return h, ok }
func (f feeds) Names() []string {
	var n []string
	for k := range f {
		n = append(n, k)
	}
	return n
}

func get(t *testing.T, mux http.Handler, method, path, origin string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func TestRoutes(t *testing.T) {
	mux := route.Unguarded()
	New(feeds{"cam": hub.New(hub.Config{})}, Options{AllowedOrigins: []string{"https://dash.example"}}).Register(mux)
	cases := []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", `data-feed="cam"`},
		{"GET", "/cam/", 200, "text/html", `camfeedPage({feed: "cam"`},
		{"GET", "/cam/embed", 200, "text/html", "embed: true"},
		{"GET", "/nope/", 404, "", ""},
		{"GET", "/nope/embed", 404, "", ""},
		{"GET", "/nope/info", 404, "", ""},
		{"GET", "/cam/info", 200, "application/json", `"name":"cam"`},
		{"GET", "/time", 200, "application/json", `{"now":`},
		{"GET", "/assets/player.js", 200, "text/javascript", "CamfeedPlayer"},
		{"GET", "/assets/timecode.js", 200, "text/javascript", "camfeedTimeCode"},
		{"GET", "/assets/viewer.css", 200, "text/css", ".overlay"},
		{"GET", "/assets/nope.js", 404, "", ""},
	}
	for _, c := range cases {
		res := get(t, mux, c.method, c.path, "")
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.StatusCode, c.code)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, ct, c.ctype)
		}
		if !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: body lacks %q", c.method, c.path, c.body)
		}
	}
}

func TestNoCDN(t *testing.T) {
	// The viewer must work on a LAN without internet: nothing it serves
	// may load from another host.
	mux := route.Unguarded()
	New(feeds{"cam": hub.New(hub.Config{})}, Options{}).Register(mux)
	for _, p := range []string{"/", "/cam/", "/cam/embed", "/assets/player.js", "/assets/page.js", "/assets/viewer.css", "/assets/timecode.js"} {
		body, _ := io.ReadAll(get(t, mux, "GET", p, "").Body)
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s refers to %q", p, bad)
			}
		}
	}
}

func TestCORS(t *testing.T) {
	mux := route.Unguarded()
	New(feeds{"cam": hub.New(hub.Config{})}, Options{AllowedOrigins: []string{"https://dash.example"}}).Register(mux)
	for _, c := range []struct{ origin, want string }{
		{"https://dash.example", "https://dash.example"},
		{"https://evil.example", ""},
		{"", ""},
	} {
		res := get(t, mux, "GET", "/time", c.origin)
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != c.want {
			t.Errorf("origin %q: Allow-Origin %q, want %q", c.origin, got, c.want)
		}
	}
	res := get(t, mux, "OPTIONS", "/cam/info", "https://dash.example")
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
	mux2 := route.Unguarded()
	New(feeds{}, Options{AllowedOrigins: []string{"*"}}).Register(mux2)
	if got := get(t, mux2, "GET", "/time", "https://any.example").Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf(`with "*": %q`, got)
	}
}

func TestInfo(t *testing.T) {
	h := hub.New(hub.Config{})
	// A hub with no units yet must still answer: zero size, not live.
	mux := route.Unguarded()
	New(feeds{"cam": h}, Options{Protocols: []string{MSE}}).Register(mux)
	var in Info
	if err := json.NewDecoder(get(t, mux, "GET", "/cam/info", "").Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	if in.Live || in.Width != 0 || len(in.Protocols) != 1 || in.Protocols[0] != MSE {
		t.Errorf("info %+v", in)
	}
	var tm struct{ Now int64 }
	if err := json.NewDecoder(get(t, mux, "GET", "/time", "").Body).Decode(&tm); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(time.UnixMicro(tm.Now)); d < 0 || d > time.Second {
		t.Errorf("/time is %v off", d)
	}
}
