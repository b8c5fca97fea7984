package whip

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrBadURL is returned, wrapped, for a push URL that cannot be used.
var ErrBadURL = errors.New("bad WHIP URL")

// maxToken bounds a bearer token; real ones (JWTs included) are far
// shorter, and a header of megabytes would only be refused by the server.
const maxToken = 4096

// keyLen: a path segment this long is taken for a stream key (Cloudflare
// Stream puts a 32-hex-digit key in the endpoint's path) and is masked
// wherever the target is named.
const keyLen = 20

// target is a WHIP endpoint, as the push URL gives it.
type target struct {
	endpoint *url.URL // http(s)://host/path?query, without the token
	token    string
	name     string // safe to log: scheme://host/path, stream keys masked
	loopback bool   // the server is on this machine: ICE on loopback only
}

func (t target) String() string { return t.name }

// name shows u as whip+scheme://host/path: no user info, no query, and
// path segments long enough to be stream keys masked.
func name(u *url.URL) string {
	if u == nil {
		return "whip+"
	}
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if len(s) >= keyLen {
			segs[i] = s[:4] + "…"
		}
	}
	return u.Scheme + "://" + u.Host + strings.Join(segs, "/")
}

// parseTarget reads whip+http://host/path and whip+https://host/path.
// A ?token= option is the bearer token, unless token (the config's) is
// set; any other option stays on the endpoint URL, which some servers
// use for the stream's name.
func parseTarget(u *url.URL, token string) (target, error) {
	n := name(u)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", n, ErrBadURL, fmt.Sprintf(format, a...))
	}
	if u == nil {
		return target{}, bad("no URL")
	}
	scheme, ok := strings.CutPrefix(u.Scheme, "whip+")
	if !ok || (scheme != "http" && scheme != "https") {
		return target{}, bad("the scheme must be whip+http:// or whip+https://")
	}
	if u.User != nil {
		return target{}, bad("put the bearer token in token=, not before the host")
	}
	if u.Host == "" || u.Hostname() == "" {
		return target{}, bad("no host")
	}
	if u.Opaque != "" {
		return target{}, bad("want whip+%s://host/path", scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, bad("the options after ? cannot be read")
	}
	if tok := q["token"]; len(tok) > 0 {
		if len(tok) > 1 {
			return target{}, bad("token= is given %d times", len(tok))
		}
		if token == "" {
			token = tok[0]
		}
		q.Del("token")
	}
	if len(token) > maxToken || strings.ContainsAny(token, "\r\n") {
		return target{}, bad("the token is not a usable bearer token")
	}
	ep := &url.URL{Scheme: scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: q.Encode()}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return target{
		endpoint: ep, token: token, name: n,
		loopback: host == "localhost" || (ip != nil && ip.IsLoopback()),
	}, nil
}
