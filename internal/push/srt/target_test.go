package srt

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// targetCases drive the parser's table test and seed its fuzz corpus.
var targetCases = []struct {
	url  string
	want target
	err  string // the whole message, "" for success
}{
	{url: "srt://example.net:9000", want: target{addr: "example.net:9000", latency: -1}},
	{url: "srt://10.0.0.1:9000?streamid=publish:cam&passphrase=0123456789&latency=400&pbkeylen=32&mode=caller",
		want: target{addr: "10.0.0.1:9000", streamID: "publish:cam", passphrase: "0123456789", latency: 400 * time.Millisecond, keyLen: 32}},
	{url: "srt://[::1]:9000?streamid=%23!::r=live/key,m=publish", want: target{addr: "[::1]:9000", streamID: "#!::r=live/key,m=publish", latency: -1}},
	{url: "rtmp://example.net/live", err: "srt://example.net: bad SRT URL: the scheme must be srt://"},
	{url: "srt://example.net", err: "srt://example.net: bad SRT URL: want srt://host:port"},
	{url: "srt://example.net:0", err: "srt://example.net:0: bad SRT URL: the port must be a number from 1 to 65535"},
	{url: "srt://example.net:70000", err: "srt://example.net:70000: bad SRT URL: the port must be a number from 1 to 65535"},
	{url: "srt://user:pw@example.net:9000", err: "srt://example.net:9000: bad SRT URL: credentials go in passphrase= and streamid=, not before the host"},
	{url: "srt://example.net:9000/live", err: "srt://example.net:9000: bad SRT URL: SRT has no path: put the stream name in streamid="},
	{url: "srt://example.net:9000?passphrase=short", err: "srt://example.net:9000: bad SRT URL: the passphrase must be 10 to 79 characters long"},
	{url: "srt://example.net:9000?passphrase=0123456789&passphrase=0123456789", err: `srt://example.net:9000: bad SRT URL: option "passphrase" is given 2 times`},
	{url: "srt://example.net:9000?latency=fast", err: "srt://example.net:9000: bad SRT URL: latency must be a whole number of milliseconds from 0 to 60000"},
	{url: "srt://example.net:9000?pbkeylen=20&passphrase=0123456789", err: "srt://example.net:9000: bad SRT URL: pbkeylen must be 16, 24 or 32"},
	{url: "srt://example.net:9000?pbkeylen=16", err: "srt://example.net:9000: bad SRT URL: pbkeylen needs a passphrase"},
	{url: "srt://example.net:9000?mode=listener", err: "srt://example.net:9000: bad SRT URL: camfeed pushes as the caller: only mode=caller can be used"},
	{url: "srt://example.net:9000?pasphrase=0123456789", err: `srt://example.net:9000: bad SRT URL: unknown option "pasphrase" (known: streamid, passphrase, latency, pbkeylen, mode)`},
	{url: "srt://example.net:9000?streamid=" + strings.Repeat("x", 513), err: "srt://example.net:9000: bad SRT URL: the stream id is longer than 512 bytes"},
	{url: "srt://example.net:9000?a=%zz", err: "srt://example.net:9000: bad SRT URL: the options after ? cannot be read"},
}

func TestParseTarget(t *testing.T) {
	for _, tc := range targetCases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		got, err := parseTarget(u)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrBadURL) {
				t.Errorf("%.60s: err = %v, want %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
}

// FuzzParseTarget: any URL gives a target or an error, and what is shown
// (the error, or the target's name) does not depend on the content of
// the stream id, the passphrase or a password: it never carries them.
func FuzzParseTarget(f *testing.F) {
	for _, tc := range targetCases {
		f.Add(tc.url)
	}
	show := func(u *url.URL) string {
		got, err := parseTarget(u)
		if err != nil {
			return err.Error()
		}
		if got.addr == "" || got.latency > maxLatency || len(got.passphrase) > maxPassphrase || len(got.streamID) > maxStreamID {
			return "accepted as " + got.addr
		}
		return got.String()
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		shown := show(u)
		if strings.HasPrefix(shown, "accepted as") {
			t.Fatalf("%q %s", s, shown)
		}
		// The same URL with its secrets swapped for others of the same
		// length must read the same.
		v := *u
		q := u.Query()
		for _, k := range []string{"streamid", "passphrase"} {
			for i, val := range q[k] {
				q[k][i] = strings.Repeat("Z", len(val))
			}
		}
		v.RawQuery = q.Encode()
		if pw, ok := u.User.Password(); ok {
			v.User = url.UserPassword(u.User.Username(), strings.Repeat("Z", len(pw)))
		}
		if u.Query().Encode() == u.RawQuery || u.User != nil {
			if other := show(&v); other != shown {
				t.Fatalf("%q shows %q, but with other secrets %q", s, shown, other)
			}
		}
	})
}

// describe words gosrt's dial errors, which are plain strings; the
// tests against srt-live-transmit check the real ones.
func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		is   error
	}{
		{errors.New("connection timeout. server didn't respond"), "no answer in 3s", ErrNoAnswer},
		{errors.New("connection rejected: REJECT (vi)"), "connection rejected by the server (wrong passphrase)", ErrRejected},
		{errors.New("connection rejected: REJECT (vj)"), "connection rejected by the server (the server wants a passphrase, or none: check passphrase=)", ErrRejected},
		{errors.New("connection rejected: REJECT (1br)"), "connection rejected by the server (access denied: check streamid=)", ErrRejected},
		{errors.New("connection rejected: REJECT (zz)"), "connection rejected by the server (wrong passphrase or stream id?)", ErrRejected},
		{errors.New("failed dialing: dial udp: lookup nowhere: no such host"), "could not connect: failed dialing: dial udp: lookup nowhere: no such host", nil},
	} {
		got := describe(tc.err, 3*time.Second)
		if got.Error() != tc.want || (tc.is != nil && !errors.Is(got, tc.is)) {
			t.Errorf("describe(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
