package whip

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// targetCases drive the parser's table test and seed its fuzz corpus.
var targetCases = []struct {
	url, token string
	endpoint   string // "" when an error is wanted
	wantToken  string
	name       string // or the whole error
	loopback   bool
}{
	{url: "whip+https://example.net/whip/cam", endpoint: "https://example.net/whip/cam", name: "whip+https://example.net/whip/cam"},
	{url: "whip+http://127.0.0.1:8889/cam/whip?token=abc", endpoint: "http://127.0.0.1:8889/cam/whip", wantToken: "abc",
		name: "whip+http://127.0.0.1:8889/cam/whip", loopback: true},
	{url: "whip+http://localhost:8889/cam/whip?token=abc", token: "cfg", endpoint: "http://localhost:8889/cam/whip", wantToken: "cfg",
		name: "whip+http://localhost:8889/cam/whip", loopback: true},
	{url: "whip+https://[::1]/w?app=live&token=t&stream=x", endpoint: "https://[::1]/w?app=live&stream=x", wantToken: "t", name: "whip+https://[::1]/w", loopback: true},
	{url: "whip+https://customer-x.cloudflarestream.com/0123456789abcdef0123456789abcdef/webRTC/publish",
		endpoint: "https://customer-x.cloudflarestream.com/0123456789abcdef0123456789abcdef/webRTC/publish",
		name:     "whip+https://customer-x.cloudflarestream.com/0123…/webRTC/publish"},
	{url: "https://example.net/whip", name: "https://example.net/whip: bad WHIP URL: the scheme must be whip+http:// or whip+https://"},
	{url: "whip+ftp://example.net/whip", name: "whip+ftp://example.net/whip: bad WHIP URL: the scheme must be whip+http:// or whip+https://"},
	{url: "whip+https://user:pw@example.net/whip", name: "whip+https://example.net/whip: bad WHIP URL: put the bearer token in token=, not before the host"},
	{url: "whip+https:///whip", name: "whip+https:///whip: bad WHIP URL: no host"},
	{url: "whip+https:example.net", name: "whip+https://: bad WHIP URL: no host"},
	{url: "whip+https://example.net/w?token=a&token=b", name: "whip+https://example.net/w: bad WHIP URL: token= is given 2 times"},
	{url: "whip+https://example.net/w?token=a%0d%0aX:1", name: "whip+https://example.net/w: bad WHIP URL: the token is not a usable bearer token"},
	{url: "whip+https://example.net/w?a=%zz", name: "whip+https://example.net/w: bad WHIP URL: the options after ? cannot be read"},
}

func TestParseTarget(t *testing.T) {
	for _, tc := range targetCases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		got, err := parseTarget(u, tc.token)
		if tc.endpoint == "" {
			if err == nil || err.Error() != tc.name || !errors.Is(err, ErrBadURL) {
				t.Errorf("%s: err = %v, want %q", tc.url, err, tc.name)
			}
			continue
		}
		if err != nil || got.endpoint.String() != tc.endpoint || got.token != tc.wantToken || got.name != tc.name || got.loopback != tc.loopback {
			t.Errorf("%s: got %v %q %q %v, %v; want %s %q %q %v", tc.url, got.endpoint, got.token, got.name, got.loopback, err,
				tc.endpoint, tc.wantToken, tc.name, tc.loopback)
		}
	}
}

// FuzzParseTarget: any URL gives a target or an error, and what is shown
// (the error, or the target's name) never carries the token, the query or
// a password: it reads the same whatever their content.
func FuzzParseTarget(f *testing.F) {
	for _, tc := range targetCases {
		f.Add(tc.url, tc.token)
	}
	show := func(u *url.URL, token string) string {
		got, err := parseTarget(u, token)
		if err != nil {
			return err.Error()
		}
		if got.endpoint == nil || got.endpoint.Host == "" || strings.ContainsAny(got.token, "\r\n") {
			return "accepted as " + got.name
		}
		return got.name
	}
	f.Fuzz(func(t *testing.T, s, token string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		shown := show(u, token)
		if strings.HasPrefix(shown, "accepted as") {
			t.Fatalf("%q %s", s, shown)
		}
		// Other secrets of the same length must read the same.
		v := *u
		q := u.Query()
		for k, vals := range q {
			for i, val := range vals {
				q[k][i] = strings.Repeat("Z", len(val))
			}
		}
		if u.Query().Encode() == u.RawQuery {
			v.RawQuery = q.Encode()
		}
		if pw, ok := u.User.Password(); ok {
			v.User = url.UserPassword(u.User.Username(), strings.Repeat("Z", len(pw)))
		}
		// (A token with a line break is refused for that, so its
		// content rightly matters.)
		if strings.ContainsAny(token, "\r\n") || strings.ContainsAny(u.Query().Get("token"), "\r\n") {
			return
		}
		if other := show(&v, strings.Repeat("Z", len(token))); other != shown {
			t.Fatalf("%q shows %q, but with other secrets %q", s, shown, other)
		}
	})
}
