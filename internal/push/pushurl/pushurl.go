// Package pushurl checks and masks the URLs of push targets. It is a leaf
// (no protocol library), so the config can validate them at startup and
// every protocol package can name a target without its credentials.
package pushurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Schemes a push target may use.
var schemes = []string{"rtmp", "rtmps", "rtsp", "rtsps", "srt", "whip+http", "whip+https"}

// ErrBadURL wraps every error Parse returns.
var ErrBadURL = errors.New("bad push URL")

// Parse checks a push target's URL: a known scheme, a host, and what each
// protocol needs (a stream key for RTMP, a port for SRT). Its errors never
// repeat the URL's credentials.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url's own error quotes the whole URL, secrets included.
		return nil, fmt.Errorf("%w: not a URL such as rtmp://host/app/streamkey", ErrBadURL)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		return nil, fmt.Errorf("%w: no scheme; use one of %s", ErrBadURL, strings.Join(schemes, ", "))
	}
	known := false
	for _, s := range schemes {
		known = known || s == scheme
	}
	if !known {
		return nil, fmt.Errorf("%w: %s:// is not one of %s", ErrBadURL, scheme, strings.Join(schemes, ", "))
	}
	u.Scheme = scheme
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrBadURL, scheme+"://")
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return nil, fmt.Errorf("%w: %s: bad port", ErrBadURL, Addr(u))
		}
	}
	switch scheme {
	case "rtmp", "rtmps":
		if _, key := SplitRTMP(u); key == "" {
			return nil, fmt.Errorf("%w: %s: needs an app and a stream key, as in rtmp://host/app/streamkey", ErrBadURL, Addr(u))
		}
	case "srt":
		if u.Port() == "" {
			return nil, fmt.Errorf("%w: %s: needs a port, as in srt://host:port?streamid=...", ErrBadURL, Addr(u))
		}
	}
	return u, nil
}

// SplitRTMP splits an RTMP URL's path the way ffmpeg and OBS do: the last
// segment (with the query, which some servers read) is the stream key,
// the rest is the application.
func SplitRTMP(u *url.URL) (app, key string) {
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", ""
	}
	app, key = p[:i], p[i+1:]
	if key != "" && u.RawQuery != "" {
		key += "?" + u.RawQuery
	}
	return app, key
}

// Addr names a target by scheme://host:port only: what errors may say.
func Addr(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// masked stands in for a secret.
const masked = "xxxx"

// plainQuery reports whether a query key's value is tuning, not a secret
// (libsrt's URI options, as srt-live-transmit and ffmpeg spell them):
// shown as given, since "latency=1000" helps a person reading a log.
// Every other key's value is masked, a stream id included: servers put
// keys and user names in it.
func plainQuery(key string) bool {
	switch strings.ToLower(key) {
	case "latency", "rcvlatency", "peerlatency", "pbkeylen", "mode", "transtype",
		"conntimeo", "peeridletimeo", "maxbw", "inputbw", "oheadbw", "payloadsize",
		"tlpktdrop", "nakreport", "lossmaxttl":
		return true
	}
	return false
}

// Mask returns the URL with its secrets replaced by xxxx, for logs, the
// status and metric labels: the password, every query value (stream id,
// passphrase, token) but the tuning ones in plainQuery, the RTMP stream
// key (the last path segment) and, for WHIP, path segments long enough to
// be keys (Cloudflare puts one there).
func Mask(u *url.URL) string {
	m := *u
	if m.User != nil {
		if _, ok := m.User.Password(); ok {
			m.User = url.UserPassword(m.User.Username(), masked)
		}
	}
	if m.RawQuery != "" {
		q := m.Query()
		for k := range q {
			if !plainQuery(k) {
				q[k] = []string{masked}
			}
		}
		m.RawQuery = q.Encode()
	}
	m.Fragment, m.RawFragment = "", ""
	segs := strings.Split(m.Path, "/")
	switch m.Scheme {
	case "rtmp", "rtmps":
		if len(segs) > 2 && segs[len(segs)-1] != "" {
			segs[len(segs)-1] = masked
		}
	case "whip+http", "whip+https":
		for i, s := range segs {
			if len(s) >= 16 {
				segs[i] = masked
			}
		}
	}
	m.Path, m.RawPath = strings.Join(segs, "/"), ""
	return m.String()
}

// MaskString is Mask for a URL that may not parse.
func MaskString(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "(a bad URL)"
	}
	return Mask(u)
}
