package srt

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// ErrBadURL is returned, wrapped, for a push URL that cannot be used.
var ErrBadURL = errors.New("bad SRT URL")

// Bounds from libsrt (srt.h): a passphrase of 10 to 79 bytes, a stream id
// of at most 512 bytes. gosrt allows an 80-byte passphrase, which libsrt
// receivers refuse, so the stricter bound is the one users get told.
const (
	minPassphrase = 10
	maxPassphrase = 79
	maxStreamID   = 512
	maxLatency    = 60 * time.Second
)

// target is what a push URL asks for. Its String is safe to log: it
// names the host and port only, never the stream id or passphrase.
type target struct {
	addr       string // host:port for net.Dial
	streamID   string
	passphrase string
	latency    time.Duration // -1: gosrt's default (120 ms, or the peer's)
	keyLen     int           // AES key length in bytes when a passphrase is set: 16, 24 or 32
}

func (t target) String() string { return "srt://" + t.addr }

// redact names u for an error before it is parsed: scheme, host and
// port, nothing from the query or user info.
func redact(u *url.URL) string {
	if u == nil {
		return "srt://"
	}
	return "srt://" + u.Host
}

// parseTarget reads srt://host:port?streamid=...&passphrase=...&latency=MS.
// The options are those of srt-live-transmit's URL syntax, the one every
// SRT server documents; mode may only be caller, since camfeed dials out.
// Unknown options are an error that names the option (never its value),
// so a misspelt passphrase key does not silently push in the clear.
func parseTarget(u *url.URL) (target, error) {
	name := redact(u)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", name, ErrBadURL, fmt.Sprintf(format, a...))
	}
	if u == nil || u.Scheme != "srt" {
		return target{}, bad("the scheme must be srt://")
	}
	if u.User != nil {
		return target{}, bad("credentials go in passphrase= and streamid=, not before the host")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return target{}, bad("want srt://host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return target{}, bad("the port must be a number from 1 to 65535")
	}
	if u.Path != "" && u.Path != "/" {
		return target{}, bad("SRT has no path: put the stream name in streamid=")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, bad("the options after ? cannot be read")
	}
	t := target{addr: net.JoinHostPort(host, port), latency: -1}
	for _, key := range slices.Sorted(maps.Keys(q)) { // sorted: the same URL, the same error
		vals := q[key]
		if len(vals) != 1 {
			return target{}, bad("option %q is given %d times", key, len(vals))
		}
		v := vals[0]
		switch key {
		case "streamid":
			if len(v) > maxStreamID {
				return target{}, bad("the stream id is longer than %d bytes", maxStreamID)
			}
			t.streamID = v
		case "passphrase":
			if len(v) < minPassphrase || len(v) > maxPassphrase {
				return target{}, bad("the passphrase must be %d to %d characters long", minPassphrase, maxPassphrase)
			}
			t.passphrase = v
		case "latency":
			ms, err := strconv.Atoi(v)
			if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxLatency {
				return target{}, bad("latency must be a whole number of milliseconds from 0 to %d", maxLatency.Milliseconds())
			}
			t.latency = time.Duration(ms) * time.Millisecond
		case "pbkeylen":
			switch v {
			case "16", "24", "32":
				t.keyLen, _ = strconv.Atoi(v)
			default:
				return target{}, bad("pbkeylen must be 16, 24 or 32")
			}
		case "mode":
			if v != "caller" {
				return target{}, bad("camfeed pushes as the caller: only mode=caller can be used")
			}
		default:
			return target{}, bad("unknown option %q (known: streamid, passphrase, latency, pbkeylen, mode)", key)
		}
	}
	if t.keyLen != 0 && t.passphrase == "" {
		return target{}, bad("pbkeylen needs a passphrase")
	}
	return t, nil
}
