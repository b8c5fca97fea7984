package origin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCheck(t *testing.T) {
	c := New([]string{"https://ha.example:8123", "*", "not an origin"})
	for _, tc := range []struct {
		name, method, host string
		hdr                map[string]string
		ok                 bool
	}{
		{"curl, no headers", "POST", "pi.local:8000", nil, true},
		{"GET from anywhere", "GET", "pi.local:8000", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, true},
		{"same origin", "POST", "pi.local:8000", map[string]string{"Origin": "http://pi.local:8000", "Sec-Fetch-Site": "same-origin"}, true},
		{"typed in the address bar", "POST", "pi.local:8000", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"old browser, same host", "DELETE", "pi.local:8000", map[string]string{"Origin": "http://pi.local:8000"}, true},
		{"cross-site", "POST", "pi.local:8000", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, false},
		{"same-site is still another origin", "POST", "pi.local:8000", map[string]string{"Origin": "http://other.local", "Sec-Fetch-Site": "same-site"}, false},
		{"old browser, other origin", "PUT", "pi.local:8000", map[string]string{"Origin": "http://evil.example"}, false},
		{"allowed origin", "POST", "pi.local:8000", map[string]string{"Origin": "https://ha.example:8123", "Sec-Fetch-Site": "cross-site"}, true},
		{"star does not allow writes", "DELETE", "pi.local:8000", map[string]string{"Origin": "http://any.example", "Sec-Fetch-Site": "cross-site"}, false},
	} {
		r := httptest.NewRequest(tc.method, "http://"+tc.host+"/api/v1/feeds/cam/clips", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		err := c.Check(r)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrCrossOrigin)) {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
		var nilChecker *Checker
		if tc.name == "cross-site" && nilChecker.Check(r) == nil {
			t.Error("nil Checker let a cross-site POST through")
		}
	}
}

func TestMiddleware(t *testing.T) {
	ran := false
	h := New(nil).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true }))
	r := httptest.NewRequest("POST", "http://pi.local:8000/x", nil)
	r.Header.Set("Origin", "http://evil.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || ran {
		t.Errorf("cross-origin POST: %d, handler ran %v", w.Code, ran)
	}
}
