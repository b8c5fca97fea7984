package config

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Every key has a flag and an environment variable, made from the Config
// struct's yaml tags so that none can be missed: the flag is the key with
// - for _ and for the . of a nested key, the variable is CAMFEED_ and the
// flag in capitals with _ for -:
//
//	lag_budget          --lag-budget          CAMFEED_LAG_BUDGET
//	limits.max_viewers  --limits-max-viewers  CAMFEED_LIMITS_MAX_VIEWERS
//	tls.self_signed     --tls-self-signed     CAMFEED_TLS_SELF_SIGNED
//
// A feed's keys (source, width, record, ...) set the default feed,
// feeds.cam, when given as flags or variables (--width 1280). The
// exceptions are users and feeds (lists of records, only in the file) and
// the per-feed overrides of global keys (buffer, lag_budget, join,
// stall_timeout, anonymous_read), whose flags set the global key.

// setting is one key with its flag and environment variable.
type setting struct {
	key   string // "lag_budget", "limits.max_viewers"; a default-feed key as "width"
	flag  string // "lag-budget"
	feed  bool   // a key of the default feed (feeds.cam.KEY)
	index []int  // the field, from Config (or from Feed when feed)
	typ   reflect.Type
	usage string
}

func (s setting) env() string { return envName(s.flag) }

// envName is the variable of a flag: CAMFEED_LAG_BUDGET for lag-budget.
func envName(flag string) string {
	return "CAMFEED_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// aliases are the setting's other flag names (flagAliases).
func (s setting) aliases() []string {
	var out []string
	for alias, to := range flagAliases {
		if to == s.flag {
			out = append(out, alias)
		}
	}
	slices.Sort(out)
	return out
}

// isBool reports a flag that needs no value (--hflip).
func (s setting) isBool() bool {
	return s.typ.Kind() == reflect.Bool || s.typ == reflect.TypeFor[*bool]()
}

// isList reports a repeatable flag whose values add up.
func (s setting) isList() bool { return s.typ == reflect.TypeFor[[]string]() }

// isPush reports the push list: repeatable too, but its values are
// separated by spaces, not commas (an SRT stream id holds commas).
func (s setting) isPush() bool { return s.typ == reflect.TypeFor[[]PushTarget]() }

// flagAliases are older or singular spellings of flags (and their
// variables) that keep working: the docs and scripts use --webrtc-host.
var flagAliases = map[string]string{"webrtc-host": "webrtc-hosts"}

// usages explains every key; TestEveryKeyHasAFlagAndAVariable checks that
// none is missing. A word in backquotes names the flag's value in --help.
var usages = map[string]string{
	"log_level":            "the `LEVEL` of messages to log: debug, info, warn or error",
	"log_format":           "log `FORMAT`: text or json",
	"debug":                "serve Go's profiler at /debug/pprof/ to admins",
	"push":                 "push the default feed to this server: an rtmp(s)://, rtsp(s)://, srt:// or whip+http(s):// `URL` (repeatable; separated by spaces in the variable; docs/SCALING.md)",
	"http":                 "HTTP listen `ADDR` (raw H.264, viewer, API), or off",
	"tcp":                  "raw H.264 TCP listen `ADDR` for the default feed (off when empty)",
	"fifo":                 "named pipe `PATH` to write the default feed to (off when empty)",
	"unix_dir":             "`DIR` for a unix socket per feed, FEED.sock (off when empty)",
	"rtsp":                 "RTSP listen `ADDR`, or off",
	"webrtc":               "WebRTC ICE UDP and TCP listen `ADDR`, or off",
	"rtsp_transports":      "RTSP transports to offer: udp, tcp, multicast (empty: all)",
	"rtsp_udp_rtp":         "RTSP over UDP: the RTP `ADDR` (an even port; empty: :8000, or the --rtsp port's pair when --rtsp is moved)",
	"rtsp_udp_rtcp":        "RTSP over UDP: the RTCP `ADDR` (the RTP port + 1)",
	"rtsp_cert":            "RTSPS certificate `FILE`",
	"rtsp_key":             "RTSPS key `FILE`",
	"webrtc_hosts":         "extra host or NAT `IP`s to offer as WebRTC candidates",
	"stun":                 "STUN `SERVER`s for WebRTC, e.g. stun:stun.l.google.com:19302 (a LAN needs none)",
	"allowed_origins":      "other `SITE`s that may embed the feeds (CORS); * for any",
	"clips_dir":            "`DIR` for saved clips (saving off when empty)",
	"clips_max_saved":      "saved clips kept per feed; the oldest go first",
	"snapshot_cache":       "how long a snapshot.jpg is reused",
	"clips_keep_for":       "a save that would push out a clip saved less than this ago is refused (0: off)",
	"clips_max_concurrent": "clip downloads at once, all feeds",
	"clips_max_per_feed":   "clip downloads of one feed at once",
	"clips_max_per_user":   "clip downloads of one user (or address, when anonymous) at once",
	"clips_max_saving":     "clips being saved at once",
	"clips_max_after":      "the largest after= of a clip",
	"clips_min_free":       "saving is refused under this much free disk",
	"publish_timeout":      "drop a publisher that sends no video for this long",
	"record_dir":           "`DIR` for recordings of feeds with record: true",
	"record_segment":       "recording segment length",
	"record_max_bytes":     "recordings kept per feed, at most",
	"record_max_age":       "recordings older than this are deleted",
	"record_min_free":      "recording pauses under this much free disk",
	"buffer":               "RAM pre-roll per feed: video time (35s) or bytes (8MiB)",
	"lag_budget":           "how far a viewer may fall behind before it skips to a keyframe",
	"join":                 "where a new viewer starts: instant, keyframe or next",
	"stall_timeout":        "restart the source when it sends nothing for this long",
	"anonymous_read":       "whether feeds may be watched without credentials once users exist (unset: only while there are none)",
	"tcp_allow":            "`ADDR`s or CIDR prefixes that may use the raw TCP output and publish to a tcp-listen source",
	"tls.cert":             "HTTPS certificate `FILE`",
	"tls.key":              "HTTPS key `FILE`",
	"tls.self_signed":      "serve HTTPS with a certificate made on first start",

	"limits.max_viewers":              "viewers at once, over all feeds",
	"limits.max_viewers_per_feed":     "viewers of one feed at once",
	"limits.max_viewers_per_ip":       "viewers from one address at once",
	"limits.limit_loopback":           "also limit 127.0.0.1 per address",
	"limits.max_header_bytes":         "request line and headers together; more gets 431",
	"limits.max_body_bytes":           "request bodies; more gets 413",
	"limits.read_header_timeout":      "time for a request's headers",
	"limits.read_timeout":             "time for a whole request body",
	"limits.write_timeout":            "a viewer whose socket takes nothing for this long is dropped",
	"limits.idle_timeout":             "idle keep-alive connections are closed after this",
	"limits.max_conns_per_ip":         "open TCP connections per address (loopback exempt)",
	"limits.max_auth_failures_per_ip": "wrong passwords per minute per address, then 429",
	"limits.max_auth_failures":        "wrong passwords per minute over all addresses",
	"limits.max_password_checks":      "password hashes computed at once",
	"limits.max_export":               "longest recording export per request",

	"source":     "default feed's `SOURCE`: auto, rpicam, test, stdin, exec:CMD, file:PATH, tcp://HOST:PORT, tcp-listen://ADDR, rtsp://URL, publish",
	"camera":     "default feed: camera index",
	"mode":       "default feed: sensor `MODE` W:H:bit-depth:packing, as rpicam-vid --mode",
	"width":      "default feed: picture width (0: the source's default)",
	"height":     "default feed: picture height (0: the source's default)",
	"framerate":  "default feed: frames per second (0: the source's default)",
	"bitrate":    "default feed: bits per second (0: the source's default)",
	"intra":      "default feed: keyframe period in frames (0: the source's default)",
	"profile":    "default feed: H.264 `PROFILE` baseline, main or high",
	"level":      "default feed: H.264 `LEVEL` 4, 4.1 or 4.2",
	"hflip":      "default feed: flip horizontally",
	"vflip":      "default feed: flip vertically",
	"rotation":   "default feed: rotation 0 or 180",
	"extra_args": "default feed: more rpicam-vid `ARGS`",
	"record":     "default feed: record to record_dir",
}

// notFlags are the keys without a flag or variable: lists of records,
// which only a file can hold.
var notFlags = []string{"users", "feeds"}

var (
	typeDuration = reflect.TypeFor[time.Duration]()
	typeSize     = reflect.TypeFor[Size]()
)

// settings lists every key that has a flag, in the order of the structs.
func settings() []setting {
	var out []setting
	var walk func(t reflect.Type, prefix string, index []int, feed bool)
	walk = func(t reflect.Type, prefix string, index []int, feed bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			idx := append(slices.Clone(index), i)
			switch {
			case name == "-" || !f.IsExported():
				continue
			case opts == "inline":
				walk(f.Type, prefix, idx, feed)
				continue
			case prefix == "" && slices.Contains(notFlags, name):
				continue
			case f.Type.Kind() == reflect.Struct && f.Type != typeSize:
				walk(f.Type, prefix+name+".", idx, feed)
				continue
			}
			key := prefix + name
			if feed && slices.ContainsFunc(out, func(s setting) bool { return s.key == key }) {
				continue // a per-feed override: the flag sets the global key
			}
			out = append(out, setting{key: key, flag: strings.NewReplacer("_", "-", ".", "-").Replace(key),
				feed: feed, index: idx, typ: f.Type, usage: usages[key]})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil, false)
	walk(reflect.TypeFor[Feed](), "", nil, true)
	return out
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

// field is the setting's field in c (in its default feed for a feed key).
func (s setting) field(c *Config) reflect.Value {
	if s.feed {
		return reflect.ValueOf(def(c)).Elem().FieldByIndex(s.index)
	}
	return reflect.ValueOf(c).Elem().FieldByIndex(s.index)
}

// set parses v into the setting's field of c. A list adds comma-separated
// values to what is there.
func (s setting) set(c *Config, v string) error {
	f := s.field(c)
	switch {
	case s.typ == typeDuration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 500ms or 5s", v)
		}
		f.SetInt(int64(d))
	case s.typ == typeSize:
		sz, err := ParseSize(v)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(sz))
	case s.isPush():
		for _, u := range strings.Fields(v) {
			f.Set(reflect.Append(f, reflect.ValueOf(PushTarget{URL: u})))
		}
	case s.isList():
		for x := range strings.SplitSeq(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				f.Set(reflect.Append(f, reflect.ValueOf(x)))
			}
		}
	case s.isBool():
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		if f.Kind() == reflect.Pointer {
			f.Set(reflect.ValueOf(&b))
		} else {
			f.SetBool(b)
		}
	case s.typ.Kind() == reflect.String:
		f.SetString(v)
	case s.typ.Kind() == reflect.Int || s.typ.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		f.SetInt(n)
	case s.typ.Kind() == reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		f.SetFloat(n)
	default:
		panic("config: no flag for " + s.key + " of type " + s.typ.String())
	}
	return nil
}

// defaultText is the setting's compiled-in default as --help shows it,
// "" when empty, zero or false (the usage says what that means).
func (s setting) defaultText() string {
	v := s.field(Default())
	if v.IsZero() {
		return ""
	}
	switch {
	case s.typ == typeDuration:
		return shortDuration(time.Duration(v.Int()))
	case s.typ == typeSize:
		sz := v.Interface().(Size)
		if sz.Duration != 0 {
			return shortDuration(sz.Duration)
		}
		return sz.String()
	case s.isList():
		return strings.Join(v.Interface().([]string), ",")
	case v.Kind() == reflect.Pointer:
		return fmt.Sprint(v.Elem().Interface())
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration writes 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// placeholder names the flag's value: the usage's word in backquotes,
// else one from the type.
func (s setting) placeholder() (name, usage string) {
	if i := strings.IndexByte(s.usage, '`'); i >= 0 {
		if j := strings.IndexByte(s.usage[i+1:], '`'); j >= 0 {
			name = s.usage[i+1 : i+1+j]
			return name, s.usage[:i] + name + s.usage[i+2+j:]
		}
	}
	switch {
	case s.isBool():
		return "", s.usage
	case s.typ == typeDuration:
		return "DURATION", s.usage
	case s.typ == typeSize:
		return "SIZE", s.usage
	case s.isList():
		return "LIST", s.usage
	case s.typ.Kind() == reflect.String:
		return "VALUE", s.usage
	}
	return "N", s.usage
}

// Flag describes one command-line flag, for help and for checks of the
// docs.
type Flag struct {
	Name    string // without dashes: "lag-budget"
	List    bool   // repeatable; values may also be comma-separated
	Aliases []string
	Key     string // "lag_budget", "limits.max_viewers", "feeds.cam.width"; "" for --config
	Env     string // "CAMFEED_LAG_BUDGET"
	Value   string // what it takes: "DURATION", "ADDR"; "" for a switch
	Usage   string
	Default string // "" when empty, zero or false
}

// Flags lists camfeed's flags: --config and one per key.
func Flags() []Flag {
	out := []Flag{{Name: "config", Env: "CAMFEED_CONFIG", Value: "FILE", Usage: "YAML config file"}}
	for _, s := range settings() {
		value, usage := s.placeholder()
		key := s.key
		if s.feed {
			key = "feeds." + DefaultFeed + "." + key
		}
		out = append(out, Flag{Name: s.flag, Aliases: s.aliases(), List: s.isList() || s.isPush(), Key: key, Env: s.env(),
			Value: value, Usage: usage, Default: s.defaultText()})
	}
	return out
}

// Keys lists every config key a file may hold, as dotted paths from the
// top ("lag_budget", "limits.max_viewers", "users.name", "feeds.*.width").
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if opts == "inline" {
				walk(f.Type, prefix)
				continue
			}
			out = append(out, prefix+name)
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Map {
				if ft.Kind() == reflect.Map {
					name += ".*"
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != typeSize {
				walk(ft, prefix+name+".")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// WriteFlags writes the flags, their values, defaults and variables, as
// camfeed --help shows them.
func WriteFlags(w io.Writer) {
	for _, f := range Flags() {
		head := "  --" + f.Name
		if f.Value != "" {
			head += " " + f.Value
		}
		for _, a := range f.Aliases {
			head += " (or --" + a + ")"
		}
		fmt.Fprintln(w, head)
		more := f.Usage
		if f.List {
			more += " (repeatable, or comma-separated)"
		}
		if f.Default != "" {
			more += "; default " + f.Default
		}
		fmt.Fprintf(w, "        %s (%s)\n", more, f.Env)
	}
}

// Suggest returns the candidate closest to word, or "" when none is close
// enough to be what was meant (a typo, a missing or extra s, - for _).
func Suggest(word string, candidates []string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("-", "_", ".", "_").Replace(s)) }
	w := norm(word)
	best, bestD := "", 0
	for _, c := range candidates {
		d := distance(w, norm(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	switch {
	case len(w) > 8:
		limit = 3
	case len(w) > 4:
		limit = 2
	}
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

// distance is the edit distance of a and b, a swap of two neighbours
// counting as one edit (widht for width).
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
