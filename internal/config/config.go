// Package config loads camfeed's settings: compiled-in defaults, then a
// YAML file (strict: an unknown key is an error naming the key and line),
// then CAMFEED_* environment variables, then command-line flags, then
// Validate. Every key but users and feeds has a flag and an environment
// variable of the same name (lag_budget, --lag-budget, CAMFEED_LAG_BUDGET),
// made from the yaml tags (flags.go).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// DefaultFeed is the name of the feed that --source configures and that
// /stream.h264 serves.
const DefaultFeed = "cam"

// The default pre-roll (buffer) holds the longest clip the docs promise,
// clip.mp4?seconds=30, plus one GOP: a clip starts at the keyframe at or
// before its start, which must still be in RAM. GOPMargin is the longest
// GOP it allows for (rpicam-vid's default is 1 s at 30 fps; the test
// pattern's too). docs/OPERATIONS.md "The RAM buffer" says the same.
const (
	LongestClip   = 30 * time.Second
	GOPMargin     = 5 * time.Second
	DefaultBuffer = LongestClip + GOPMargin
)

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid config")

// Config is the whole configuration.
type Config struct {
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	// Debug serves Go's profiler at /debug/pprof/ to admins, for
	// profiling on the device itself (docs/PERFORMANCE.md). Off by
	// default: a profile costs CPU while it runs and shows internals.
	Debug bool `yaml:"debug"`

	HTTP    string `yaml:"http"`     // raw H.264, status, viewer; "off" disables
	TCP     string `yaml:"tcp"`      // raw H.264 of the default feed; "" = off
	FIFO    string `yaml:"fifo"`     // named pipe for the default feed; "" = off
	UnixDir string `yaml:"unix_dir"` // a socket per feed, DIR/FEED.sock; "" = off
	RTSP    string `yaml:"rtsp"`     // "off" disables
	WebRTC  string `yaml:"webrtc"`   // "off" disables

	// RTSP server details (internal/rtsp).
	RTSPTransports []string `yaml:"rtsp_transports"` // any of udp, tcp, multicast; empty: all
	RTSPUDPRTP     string   `yaml:"rtsp_udp_rtp"`    // UDP unicast RTP address; default :8000 (UDP, beside HTTP's TCP 8000)
	RTSPUDPRTCP    string   `yaml:"rtsp_udp_rtcp"`   // and RTCP, default :8001
	RTSPCert       string   `yaml:"rtsp_cert"`       // RTSPS certificate and key files
	RTSPKey        string   `yaml:"rtsp_key"`

	// Browser outputs (WebRTC, MSE, LL-HLS, the viewer).
	WebRTCHosts    []string `yaml:"webrtc_hosts"`    // extra host or NAT 1:1 IPs to offer as ICE candidates
	STUN           []string `yaml:"stun"`            // STUN servers; none by default: the LAN needs none
	AllowedOrigins []string `yaml:"allowed_origins"` // CORS: other sites that may embed the feeds ("*": any)

	// Clips and snapshots from the RAM pre-roll (internal/clip, snapshot).
	ClipsDir      string        `yaml:"clips_dir"` // where POST .../clips saves; "" disables saving
	ClipsMaxSaved int           `yaml:"clips_max_saved"`
	SnapshotCache time.Duration `yaml:"snapshot_cache"` // how long a snapshot.jpg is reused

	// ClipLimits are the other clips_* keys (clips.go).
	ClipLimits `yaml:",inline"`

	// PublishTimeout drops a publisher (tcp-listen, RTSP ANNOUNCE) that
	// sends no video for this long, so it cannot hold the feed's one
	// publisher slot.
	PublishTimeout time.Duration `yaml:"publish_timeout"`

	// Recording (internal/record), for feeds with record: true.
	RecordDir      string        `yaml:"record_dir"`
	RecordSegment  time.Duration `yaml:"record_segment"`
	RecordMaxBytes Size          `yaml:"record_max_bytes"` // per feed; oldest segments go first
	RecordMaxAge   time.Duration `yaml:"record_max_age"`
	RecordMinFree  Size          `yaml:"record_min_free"` // stop writing below this much free disk

	// Defaults for every feed; a feed may override them.
	Buffer       Size          `yaml:"buffer"`
	LagBudget    time.Duration `yaml:"lag_budget"`
	Join         string        `yaml:"join"`
	StallTimeout time.Duration `yaml:"stall_timeout"`

	// Who may do what (internal/auth): users with hashed passwords or
	// tokens, anonymous reading, the raw TCP output's allow-list.
	Users         []auth.User `yaml:"users"`
	AnonymousRead *bool       `yaml:"anonymous_read"` // unset: allowed only while no user is configured
	TCPAllow      []string    `yaml:"tcp_allow"`
	// TLS for the HTTP server: certificate files, or a self-signed one.
	TLS auth.TLSConfig `yaml:"tls"`
	// Limits on viewers, requests and timeouts (internal/limits).
	Limits limits.Config `yaml:"limits"`

	Feeds map[string]*Feed `yaml:"feeds"`
}

// Feed configures one camera or stream.
type Feed struct {
	Source string `yaml:"source"` // see ParseSource

	// Camera and test-pattern settings. Zero means the source's default.
	Camera    int      `yaml:"camera"`
	Mode      string   `yaml:"mode"`
	Width     int      `yaml:"width"`
	Height    int      `yaml:"height"`
	Framerate float64  `yaml:"framerate"`
	Bitrate   int      `yaml:"bitrate"`
	Intra     int      `yaml:"intra"`
	Profile   string   `yaml:"profile"`
	Level     string   `yaml:"level"`
	HFlip     bool     `yaml:"hflip"`
	VFlip     bool     `yaml:"vflip"`
	Rotation  int      `yaml:"rotation"`
	ExtraArgs []string `yaml:"extra_args"`

	// Record writes this feed to record_dir (off by default: no SD-card
	// wear unless asked).
	Record bool `yaml:"record"`

	// AnonymousRead overrides the global anonymous_read for this feed.
	AnonymousRead *bool `yaml:"anonymous_read"`

	// Push sends the feed to these servers (push.go, internal/push).
	Push []PushTarget `yaml:"push"`

	// Per-feed overrides of the global defaults.
	Buffer       Size          `yaml:"buffer"`
	LagBudget    time.Duration `yaml:"lag_budget"`
	Join         string        `yaml:"join"`
	StallTimeout time.Duration `yaml:"stall_timeout"`
}

// Default returns the compiled-in defaults: one feed, "cam", whose source
// is chosen at start (a camera if rpicam-vid is found, else the test
// pattern).
func Default() *Config {
	return &Config{
		LogLevel:       "info",
		LogFormat:      "text",
		HTTP:           ":8000",
		UnixDir:        "",
		RTSP:           DefaultRTSP,
		WebRTC:         ":8189",
		Buffer:         Size{Duration: DefaultBuffer},
		LagBudget:      500 * time.Millisecond,
		Join:           "instant",
		StallTimeout:   5 * time.Second,
		Limits:         limits.Default(),
		ClipsMaxSaved:  100,
		ClipLimits:     DefaultClipLimits(),
		PublishTimeout: 5 * time.Second,
		SnapshotCache:  time.Second,
		RecordSegment:  time.Minute,
		RecordMaxBytes: Size{Bytes: 1 << 30},
		RecordMaxAge:   7 * 24 * time.Hour,
		RecordMinFree:  Size{Bytes: 512 << 20},
		Feeds:          map[string]*Feed{DefaultFeed: {Source: "auto"}},
	}
}

// Effective returns the feed's settings with the global defaults filled in.
func (c *Config) Effective(name string) Feed {
	f := *c.Feeds[name]
	if f.Buffer.IsZero() {
		f.Buffer = c.Buffer
	}
	if f.LagBudget == 0 {
		f.LagBudget = c.LagBudget
	}
	if f.Join == "" {
		f.Join = c.Join
	}
	if f.StallTimeout == 0 {
		f.StallTimeout = c.StallTimeout
	}
	return f
}

// TestPattern is the feed's settings for the built-in test pattern
// (source test, or auto without a camera). Its Validate says whether the
// pattern can make that picture.
func (f Feed) TestPattern() testsrc.Config {
	return testsrc.Config{Width: f.Width, Height: f.Height, FPS: int(math.Round(f.Framerate)), Intra: f.Intra}
}

// BudgetBytes is the feed's RAM budget in bytes. A budget given as video
// time becomes bytes at the feed's bitrate (at least 4 Mbit/s, rpicam-vid's
// default for 1080p30 being lower) with half again for peaks.
func (f Feed) BudgetBytes() int {
	if d := f.Buffer.Duration; d > 0 {
		return int(d.Seconds() * float64(max(f.Bitrate, 4_000_000)) / 8 * 1.5)
	}
	return f.Buffer.Bytes
}

// FeedNames returns the feed names, sorted.
func (c *Config) FeedNames() []string {
	names := make([]string, 0, len(c.Feeds))
	for n := range c.Feeds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var feedName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Validate checks the whole configuration. Its messages name the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format: %q is not one of text, json", c.LogFormat)
	}
	for _, a := range []struct{ key, val string }{{"http", c.HTTP}, {"rtsp", c.RTSP}, {"webrtc", c.WebRTC}} {
		if a.val != "off" {
			if err := checkAddr(a.val); err != nil {
				bad("%s: %v", a.key, err)
			}
		}
	}
	if c.TCP != "" {
		if err := checkAddr(c.TCP); err != nil {
			bad("tcp: %v", err)
		}
	}
	if len(c.Feeds) == 0 {
		bad("feeds: at least one feed is needed")
	}
	for _, name := range c.FeedNames() {
		f := c.Feeds[name]
		if f == nil {
			bad("feeds.%s: empty feed", name)
			continue
		}
		// Names that HTTP routes use (api, metrics, ...) are refused by
		// the app, which knows its routes (route.Mux.Reserved).
		if !feedName.MatchString(name) {
			bad("feeds.%s: a feed name is 1-32 of a-z 0-9 _ -", name)
		}
		p := "feeds." + name + "."
		src, err := ParseSource(f.Source)
		if err != nil {
			bad("%ssource: %v", p, err)
		}
		if src.Kind == SourceTest {
			if err := f.TestPattern().Validate(); err != nil {
				bad("%s: the test pattern cannot do that: %s", strings.TrimSuffix(p, "."), strings.TrimPrefix(err.Error(), testsrc.ErrBadConfig.Error()+": "))
			}
		}
		e := c.Effective(name)
		if e.Buffer.Bytes != 0 && e.Buffer.Bytes < 64<<10 {
			bad("%sbuffer: %s is too small; at least 64KiB", p, e.Buffer)
		}
		if e.Buffer.Bytes > 1<<30 {
			bad("%sbuffer: %s is too large; at most 1GiB", p, e.Buffer)
		}
		if e.Buffer.Duration != 0 && (e.Buffer.Duration < time.Second || e.Buffer.Duration > 10*time.Minute) {
			bad("%sbuffer: %s must be between 1s and 10m", p, e.Buffer)
		}
		if e.LagBudget < 50*time.Millisecond || e.LagBudget > time.Minute {
			bad("%slag_budget: %s must be between 50ms and 1m", p, e.LagBudget)
		}
		switch e.Join {
		case "instant", "keyframe", "next":
		default:
			bad("%sjoin: %q is not one of instant, keyframe, next", p, e.Join)
		}
		if e.StallTimeout < 500*time.Millisecond || e.StallTimeout > 10*time.Minute {
			bad("%sstall_timeout: %s must be between 500ms and 10m", p, e.StallTimeout)
		}
		if f.Width < 0 || f.Width > 4096 || f.Height < 0 || f.Height > 4096 {
			bad("%swidth/height: %dx%d is out of range", p, f.Width, f.Height)
		}
		if (f.Width == 0) != (f.Height == 0) {
			bad("%swidth/height: give both or neither", p)
		}
		if f.Framerate < 0 || f.Framerate > 240 {
			bad("%sframerate: %g is out of range 1-240", p, f.Framerate)
		}
		if f.Bitrate < 0 || f.Bitrate > 100_000_000 {
			bad("%sbitrate: %d is out of range (bits per second, up to 100000000)", p, f.Bitrate)
		}
		if f.Intra < 0 || f.Intra > 1000 {
			bad("%sintra: %d is out of range 1-1000", p, f.Intra)
		}
		switch f.Rotation {
		case 0, 180:
		default:
			bad("%srotation: %d is not supported by the camera; use 0 or 180", p, f.Rotation)
		}
		switch f.Profile {
		case "", "baseline", "main", "high":
		default:
			bad("%sprofile: %q is not one of baseline, main, high", p, f.Profile)
		}
		if f.Level != "" && !slices.Contains([]string{"4", "4.1", "4.2"}, f.Level) {
			bad("%slevel: %q is not one of 4, 4.1, 4.2", p, f.Level)
		}
		if f.Camera < 0 || f.Camera > 15 {
			bad("%scamera: %d is out of range 0-15", p, f.Camera)
		}
		errs = append(errs, validatePush(p, f.Push)...)
	}
	if _, err := auth.New(c.AuthConfig(nil)); err != nil {
		errs = append(errs, err)
	}
	for _, name := range c.FeedNames() {
		if f := c.Feeds[name]; f != nil && f.Record && c.RecordDir == "" {
			bad("feeds.%s.record: needs record_dir, the directory to record to", name)
		}
	}
	errs = append(errs, c.ClipLimits.validate(c.ClipsMaxSaved)...)
	if c.PublishTimeout < 500*time.Millisecond || c.PublishTimeout > 5*time.Minute {
		bad("publish_timeout: %s must be between 500ms and 5m", c.PublishTimeout)
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// AuthConfig is the configuration for auth.New.
func (c *Config) AuthConfig(log *slog.Logger) auth.Config {
	perFeed := make(map[string]*bool, len(c.Feeds))
	for name, f := range c.Feeds {
		if f != nil {
			perFeed[name] = f.AnonymousRead
		}
	}
	return auth.Config{Users: c.Users, AnonymousRead: auth.AnonymousReadMap(c.AnonymousRead, perFeed), TCPAllow: c.TCPAllow, Logger: log,
		FailuresPerIP: c.Limits.MaxAuthFailuresPerIP, Failures: c.Limits.MaxAuthFailures, PasswordChecks: c.Limits.MaxPasswordChecks}
}

func checkAddr(a string) error {
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%q is not HOST:PORT or :PORT", a)
	}
	return nil
}

// DefaultRTSP is rtsp's default address; its UDP pair is :8000 and :8001.
const DefaultRTSP = ":8554"

// RTSPUDP returns RTSP's UDP port pair (rtsp_udp_rtp, rtsp_udp_rtcp).
// When neither is set and rtsp is moved off its default port, the pair
// moves with it, to the first even port after it and the next (--rtsp
// :9554 gives :9556 and :9557), so that a second camfeed on the same
// machine starts with flags for its TCP ports alone; derived says so, for
// the log. Empty addresses leave the RTSP server's defaults.
func (c *Config) RTSPUDP() (rtp, rtcp string, derived bool) {
	if c.RTSPUDPRTP != "" || c.RTSPUDPRTCP != "" || c.RTSP == "off" {
		return c.RTSPUDPRTP, c.RTSPUDPRTCP, false
	}
	host, port, err := net.SplitHostPort(c.RTSP)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || c.RTSP == DefaultRTSP || p == 8554 || p == 0 || p > 65533 {
		return "", "", false
	}
	even := p + 1 + (p+1)%2
	return net.JoinHostPort(host, strconv.Itoa(even)), net.JoinHostPort(host, strconv.Itoa(even+1)), true
}
