// Package limits keeps one camera server from being taken down by its
// clients: a cap on viewers per feed and per address, header and body size
// limits, and timeouts on every read and write, so a client that sends or
// reads slowly (slowloris) is cut off instead of holding a connection
// forever.
package limits

import (
	"errors"
	"fmt"
	"time"
)

// Config is the limits: part of camfeed's configuration.
//
//	limits:
//	  max_viewers: 64
//	  max_viewers_per_feed: 32
//	  max_viewers_per_ip: 8
//	  max_header_bytes: 16KiB    (the lead's config.Size, or bytes)
//	  max_body_bytes: 1MiB
//	  read_header_timeout: 5s
//	  read_timeout: 10s
//	  write_timeout: 10s
//	  idle_timeout: 60s
//	  max_conns_per_ip: 32
//	  max_auth_failures_per_ip: 10
//	  max_auth_failures: 100
//	  max_password_checks: 2
//	  max_export: 10m
type Config struct {
	// MaxViewers caps viewers over every feed and protocol; 0 is no cap.
	MaxViewers int `yaml:"max_viewers"`
	// MaxViewersPerFeed caps viewers of one feed over all outputs; 0 is
	// no cap. Every viewer costs upload bandwidth: 32 viewers of a
	// 4 Mbit/s feed fill a Pi's 100 Mbit/s port.
	MaxViewersPerFeed int `yaml:"max_viewers_per_feed"`
	// MaxViewersPerIP caps the streams one address may hold open, over
	// all feeds; 0 is no cap. Loopback is exempt: behind a local reverse
	// proxy every viewer comes from 127.0.0.1.
	MaxViewersPerIP int `yaml:"max_viewers_per_ip"`
	// LimitLoopback applies max_viewers_per_ip to 127.0.0.1 and ::1 too.
	// Leave it off behind a reverse proxy on the same machine.
	LimitLoopback bool `yaml:"limit_loopback"`

	MaxHeaderBytes int   `yaml:"max_header_bytes"` // request line and headers together; larger gets 431
	MaxBodyBytes   int64 `yaml:"max_body_bytes"`   // request bodies (WHEP offers, API calls); larger gets 413

	// ReadHeaderTimeout bounds the time to send the request headers: the
	// slowloris defence.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout is the longest a client may take to send a request
	// body, once its headers are in; slower gets 408 and the connection
	// is closed. camfeed's bodies are small (WHEP offers, API calls).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout is the longest a single write to a viewer may block.
	// It is applied per write to long-lived streams, never to a whole
	// response: a stream lasts as long as the viewer watches.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections with no request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`

	// MaxConnsPerIP caps the TCP connections one address may hold open
	// to the HTTP server and the raw TCP output; 0 is no cap. Loopback
	// is exempt (a local reverse proxy). A browser needs about six.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// MaxAuthFailuresPerIP is how many wrong passwords one address may
	// send per minute before its password checks are refused with 429
	// (a burst of this many, then one every 60s/N); 0 is no cap.
	// Viewers already logged in, and tokens, are not affected.
	MaxAuthFailuresPerIP int `yaml:"max_auth_failures_per_ip"`
	// MaxAuthFailures is the same over all addresses together, against
	// a guesser with many addresses; 0 is no cap.
	MaxAuthFailures int `yaml:"max_auth_failures"`
	// MaxPasswordChecks is how many password hashes (bcrypt, argon2id)
	// may be computed at once. Each takes ~80 ms of a core on a Pi 4; a
	// flood of logins queues here instead of taking every core.
	MaxPasswordChecks int `yaml:"max_password_checks"`
	// MaxExport is the longest span of recording one export request may
	// ask for; longer gets 400.
	MaxExport time.Duration `yaml:"max_export"`
}

// Default returns the compiled-in limits, sized for a Pi on a home LAN.
func Default() Config {
	return Config{
		MaxViewers:        64,
		MaxViewersPerFeed: 32,
		MaxViewersPerIP:   8,
		MaxHeaderBytes:    16 << 10,
		MaxBodyBytes:      1 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,

		MaxConnsPerIP:        32,
		MaxAuthFailuresPerIP: 10,
		MaxAuthFailures:      100,
		MaxPasswordChecks:    2,
		MaxExport:            10 * time.Minute,
	}
}

// Validate checks the ranges; messages name the key under limits.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("limits."+format, a...)) }
	if c.MaxViewers < 0 {
		bad("max_viewers: %d is negative; 0 means no limit", c.MaxViewers)
	}
	if c.MaxViewersPerFeed < 0 {
		bad("max_viewers_per_feed: %d is negative; 0 means no limit", c.MaxViewersPerFeed)
	}
	if c.MaxViewersPerIP < 0 {
		bad("max_viewers_per_ip: %d is negative; 0 means no limit", c.MaxViewersPerIP)
	}
	if c.MaxHeaderBytes < 8<<10 || c.MaxHeaderBytes > 1<<20 {
		bad("max_header_bytes: %d must be between 8KiB and 1MiB", c.MaxHeaderBytes)
	}
	if c.MaxBodyBytes < 4<<10 || c.MaxBodyBytes > 64<<20 {
		bad("max_body_bytes: %d must be between 4KiB and 64MiB", c.MaxBodyBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if d.v < 100*time.Millisecond || d.v > 10*time.Minute {
			bad("%s: %s must be between 100ms and 10m", d.key, d.v)
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"max_conns_per_ip", c.MaxConnsPerIP}, {"max_auth_failures_per_ip", c.MaxAuthFailuresPerIP}, {"max_auth_failures", c.MaxAuthFailures}} {
		if n.v < 0 {
			bad("%s: %d is negative; 0 means no limit", n.key, n.v)
		}
	}
	if c.MaxPasswordChecks < 1 || c.MaxPasswordChecks > 64 {
		bad("max_password_checks: %d must be between 1 and 64", c.MaxPasswordChecks)
	}
	if c.MaxExport < time.Second || c.MaxExport > 24*time.Hour {
		bad("max_export: %s must be between 1s and 24h", c.MaxExport)
	}
	return errors.Join(errs...)
}
