package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrHelp is returned by Load when -h or --help was given.
var ErrHelp = flag.ErrHelp

// setting is one knob that has a flag, a config key and an env variable.
type setting struct {
	name  string // flag name; key is name with _ for -, env CAMFEED_ + upper
	usage string
	set   func(c *Config, v string) error
}

func (s setting) env() string {
	return "CAMFEED_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 500ms or 5s", v)
		}
		*p(c) = d
		return nil
	}
}

// def returns the default feed, creating it if the file did not define it.
func def(c *Config) *Feed {
	if c.Feeds == nil {
		c.Feeds = map[string]*Feed{}
	}
	f := c.Feeds[DefaultFeed]
	if f == nil {
		f = &Feed{Source: SourceAuto}
		c.Feeds[DefaultFeed] = f
	}
	return f
}

func feedStr(p func(*Feed) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(def(c)) = v; return nil }
}

func feedInt(p func(*Feed) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p(def(c)) = n
		return nil
	}
}

func feedBool(p func(*Feed) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p(def(c)) = b
		return nil
	}
}

// list appends comma-separated values; the flag may be repeated.
func list(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				*p(c) = append(*p(c), x)
			}
		}
		return nil
	}
}

func settings() []setting {
	return []setting{
		{"log-level", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"log-format", "text or json", str(func(c *Config) *string { return &c.LogFormat })},
		{"http", "HTTP listen address (raw H.264, viewer, API), or off", str(func(c *Config) *string { return &c.HTTP })},
		{"tcp", "raw H.264 TCP listen address for the default feed (off when empty)", str(func(c *Config) *string { return &c.TCP })},
		{"fifo", "named pipe to write the default feed to (off when empty)", str(func(c *Config) *string { return &c.FIFO })},
		{"unix-dir", "directory for a unix socket per feed, FEED.sock (off when empty)", str(func(c *Config) *string { return &c.UnixDir })},
		{"rtsp", "RTSP listen address, or off", str(func(c *Config) *string { return &c.RTSP })},
		{"webrtc", "WebRTC ICE UDP/TCP listen address, or off", str(func(c *Config) *string { return &c.WebRTC })},
		{"rtsp-transports", "RTSP transports to offer: udp, tcp, multicast (comma-separated; empty: all)", list(func(c *Config) *[]string { return &c.RTSPTransports })},
		{"webrtc-host", "extra host or NAT IP for WebRTC candidates (repeatable, or comma-separated)", list(func(c *Config) *[]string { return &c.WebRTCHosts })},
		{"stun", "STUN server for WebRTC, e.g. stun:stun.l.google.com:19302 (repeatable)", list(func(c *Config) *[]string { return &c.STUN })},
		{"allowed-origins", "other sites that may embed the feeds (CORS), comma-separated; * for any", list(func(c *Config) *[]string { return &c.AllowedOrigins })},
		{"clips-dir", "directory for saved clips (off when empty)", str(func(c *Config) *string { return &c.ClipsDir })},
		{"record-dir", "directory for recordings of feeds with record: true", str(func(c *Config) *string { return &c.RecordDir })},
		{"buffer", "RAM pre-roll per feed: video time (30s) or bytes (8MiB)", func(c *Config, v string) error {
			sz, err := ParseSize(v)
			c.Buffer = sz
			return err
		}},
		{"lag-budget", "how far a viewer may fall behind before it skips to a keyframe", dur(func(c *Config) *time.Duration { return &c.LagBudget })},
		{"join", "where a new viewer starts: instant, keyframe or next", str(func(c *Config) *string { return &c.Join })},
		{"stall-timeout", "restart the source when it sends nothing for this long", dur(func(c *Config) *time.Duration { return &c.StallTimeout })},
		{"source", "default feed's source: auto, rpicam, test, stdin, exec:CMD, file:PATH, tcp://HOST:PORT, tcp-listen://ADDR, rtsp://URL, publish", feedStr(func(f *Feed) *string { return &f.Source })},
		{"camera", "default feed: camera index", feedInt(func(f *Feed) *int { return &f.Camera })},
		{"mode", "default feed: sensor mode W:H:bit-depth:packing, as rpicam-vid --mode", feedStr(func(f *Feed) *string { return &f.Mode })},
		{"width", "default feed: picture width", feedInt(func(f *Feed) *int { return &f.Width })},
		{"height", "default feed: picture height", feedInt(func(f *Feed) *int { return &f.Height })},
		{"framerate", "default feed: frames per second", func(c *Config, v string) error {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			def(c).Framerate = n
			return nil
		}},
		{"bitrate", "default feed: bits per second", feedInt(func(f *Feed) *int { return &f.Bitrate })},
		{"intra", "default feed: keyframe period in frames", feedInt(func(f *Feed) *int { return &f.Intra })},
		{"profile", "default feed: H.264 profile baseline, main or high", feedStr(func(f *Feed) *string { return &f.Profile })},
		{"level", "default feed: H.264 level 4, 4.1 or 4.2", feedStr(func(f *Feed) *string { return &f.Level })},
		{"hflip", "default feed: flip horizontally", feedBool(func(f *Feed) *bool { return &f.HFlip })},
		{"vflip", "default feed: flip vertically", feedBool(func(f *Feed) *bool { return &f.VFlip })},
		{"rotation", "default feed: rotation 0 or 180", feedInt(func(f *Feed) *int { return &f.Rotation })},
		{"push", "default feed: push to this server: rtmp(s)://, rtsp(s)://, srt://, whip+http(s):// URL (repeatable; space-separated in the variable)", addPush},
	}
}

// Load builds the configuration from defaults, the file named by --config
// (or CAMFEED_CONFIG), the environment and args (without the program name).
// It validates the result.
func Load(args []string, environ []string, stderr io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("camfeed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", envLookup(environ, "CAMFEED_CONFIG"), "YAML config file (CAMFEED_CONFIG)")
	all := settings()
	flagVals := map[string]*string{}
	for _, s := range all {
		v := new(string)
		flagVals[s.name] = v
		switch s.name {
		case "hflip", "vflip":
			fs.BoolFunc(s.name, s.usage+" ("+s.env()+")", func(x string) error { *v = x; return nil })
			continue
		case "push": // repeatable; URLs may hold commas
			fs.Func(s.name, s.usage+" ("+s.env()+")", func(x string) error {
				*v = strings.TrimSpace(*v + " " + x)
				return nil
			})
			continue
		case "webrtc-host", "stun", "allowed-origins", "rtsp-transports": // repeatable
			fs.Func(s.name, s.usage+" ("+s.env()+")", func(x string) error {
				*v = strings.TrimPrefix(*v+","+x, ",")
				return nil
			})
			continue
		}
		fs.StringVar(v, s.name, "", s.usage+" ("+s.env()+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	c := Default()
	if *path != "" {
		data, err := os.ReadFile(*path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := c.decode(data); err != nil {
			return nil, fmt.Errorf("config %s: %w", *path, err)
		}
	}
	for _, s := range all {
		if v, ok := envLookupOK(environ, s.env()); ok {
			if err := s.set(c, v); err != nil {
				return nil, fmt.Errorf("%s: %w", s.env(), err)
			}
		}
	}
	for _, s := range all {
		if set[s.name] {
			if err := s.set(c, *flagVals[s.name]); err != nil {
				return nil, fmt.Errorf("--%s: %w", s.name, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode applies a YAML document over c. Unknown keys are errors that
// name the key and its line; feeds given in the file replace the default.
func (c *Config) decode(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var file Config
	file = *c
	file.Feeds = nil
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return cleanYAMLError(err)
	}
	if file.Feeds == nil {
		file.Feeds = c.Feeds
	}
	*c = file
	return nil
}

// cleanYAMLError turns yaml.v3's "field x not found in type config.Feed"
// into "line 3: unknown key x".
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		if i := strings.Index(m, ": field "); i >= 0 && strings.Contains(m, " not found in type ") {
			key := m[i+len(": field "):]
			key = key[:strings.Index(key, " not found in type ")]
			m = m[:i] + ": unknown key " + strconv.Quote(key)
		}
		msgs = append(msgs, m)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func envLookup(environ []string, key string) string {
	v, _ := envLookupOK(environ, key)
	return v
}

func envLookupOK(environ []string, key string) (string, bool) {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
