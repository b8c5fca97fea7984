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

	MaxHeaderBytes int   `yaml:"max_header_bytes"` // request line and headers; larger gets 431
	MaxBodyBytes   int64 `yaml:"max_body_bytes"`   // request bodies (WHEP offers, API calls); larger gets 413

	// ReadHeaderTimeout bounds the time to send the request headers: the
	// slowloris defence.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout is the longest a request body may pause between reads.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout is the longest a single write to a viewer may block.
	// It is applied per write to long-lived streams, never to a whole
	// response: a stream lasts as long as the viewer watches.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections with no request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
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
	if c.MaxHeaderBytes < 1<<10 || c.MaxHeaderBytes > 1<<20 {
		bad("max_header_bytes: %d must be between 1KiB and 1MiB", c.MaxHeaderBytes)
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
	return errors.Join(errs...)
}
