package config

import (
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEveryKeyHasAFlagAndAVariable: every key a file may hold, except the
// lists of records (users, feeds), has a flag and a CAMFEED_ variable
// that set it, and a usage line for --help.
func TestEveryKeyHasAFlagAndAVariable(t *testing.T) {
	flags := map[string]Flag{}
	for _, f := range Flags() {
		if f.Key != "" {
			flags[f.Key] = f
		}
		if f.Usage == "" {
			t.Errorf("--%s has no usage line (usages in flags.go)", f.Name)
		}
		if strings.Contains(f.Usage, "`") {
			t.Errorf("--%s: usage %q has an unmatched backquote", f.Name, f.Usage)
		}
	}
	keys := Keys()
	for _, key := range keys {
		top, _, _ := strings.Cut(key, ".")
		if slices.Contains(notFlags, top) || slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, key+".") }) {
			continue // users, feeds, and tls and limits, whose keys have flags
		}
		if top == "tls" || top == "limits" || !strings.Contains(key, ".") {
			if _, ok := flags[key]; !ok {
				if _, feedKey := flags["feeds."+DefaultFeed+"."+key]; !feedKey {
					t.Errorf("key %s has no flag", key)
				}
			}
		}
	}
	for _, key := range Keys() {
		if rest, ok := strings.CutPrefix(key, "feeds.*."); ok {
			_, asFeed := flags["feeds."+DefaultFeed+"."+rest]
			_, asGlobal := flags[rest]
			// --push takes the URL; a WHIP token rides in it as ?token=.
			inPush := strings.HasPrefix(rest, "push.")
			if !asFeed && !asGlobal && !inPush && rest != "anonymous_read" {
				t.Errorf("feed key %s has no flag", rest)
			}
		}
	}
	if len(flags) < 70 {
		t.Errorf("only %d flags", len(flags))
	}
}

// TestEveryFlagAndVariableSetsItsKey sets each key through its flag and
// then through its variable, and checks that the value changed.
func TestEveryFlagAndVariableSetsItsKey(t *testing.T) {
	for _, s := range settings() {
		v := sampleValue(s)
		if v == "" {
			continue
		}
		base := Default()
		for _, how := range []string{"flag", "env"} {
			var args, env []string
			if how == "flag" {
				args = []string{"--" + s.flag + "=" + v}
			} else {
				env = []string{s.env() + "=" + v}
			}
			c, err := load(args, env)
			if err != nil {
				t.Errorf("%s %s=%s: %v", how, s.flag, v, err)
				continue
			}
			got := s.field(c)
			if reflect.DeepEqual(got.Interface(), s.field(base).Interface()) && !s.isList() {
				t.Errorf("%s %s=%s did not change %s", how, s.flag, v, s.key)
			}
			if (s.isList() || s.isPush()) && got.Len() != 1 {
				t.Errorf("%s %s=%s: %d values", how, s.flag, v, got.Len())
			}
		}
	}
}

// load is Load with the pairs of width and height that validation needs.
func load(args, env []string) (*Config, error) {
	return Load(args, env, io.Discard)
}

// sampleValue is a valid value for s unlike its default.
func sampleValue(s setting) string {
	switch s.key {
	case "log_level":
		return "debug"
	case "log_format":
		return "json"
	case "http", "tcp", "rtsp", "webrtc", "rtsp_udp_rtp", "rtsp_udp_rtcp":
		return "127.0.0.1:0"
	case "rtsp_transports":
		return "tcp"
	case "push":
		return "rtmp://127.0.0.1/live/key"
	case "join":
		return "next"
	case "source":
		return "stdin"
	case "width", "height": // need each other
		return ""
	case "profile":
		return "main"
	case "level":
		return "4.1"
	case "rotation":
		return "180"
	case "rtsp_cert", "rtsp_key", "tls.cert", "tls.key", "tls.self_signed", "record": // need each other or a directory
		return ""
	case "clips_min_free", "record_max_bytes", "record_min_free":
		return "300MiB"
	case "buffer":
		return "20s"
	case "tcp_allow":
		return "10.0.0.0/8"
	case "limits.max_header_bytes", "limits.max_body_bytes":
		return "20000"
	case "snapshot_cache", "clips_keep_for", "clips_max_after", "publish_timeout", "record_segment", "record_max_age", "lag_budget", "stall_timeout":
		return "7s"
	}
	switch {
	case s.isBool():
		return "true"
	case s.typ == typeDuration:
		return "7s"
	case s.isList():
		return "x"
	case s.typ.Kind() == 0:
		return ""
	case s.typ.String() == "string":
		return "/tmp/x"
	case s.typ.String() == "float64":
		return "25"
	}
	return "3"
}

func TestFlagAliasAndNested(t *testing.T) {
	c, err := Load([]string{"--webrtc-host", "10.0.0.2", "--limits-max-viewers", "5", "--tls-self-signed", "--debug"},
		[]string{"CAMFEED_RTSP_UDP_RTP=:7000", "CAMFEED_RTSP_UDP_RTCP=:7001", "CAMFEED_LIMITS_WRITE_TIMEOUT=3s", "CAMFEED_ANONYMOUS_READ=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.WebRTCHosts[0] != "10.0.0.2" || c.Limits.MaxViewers != 5 || !c.TLS.SelfSigned || !c.Debug {
		t.Errorf("flags: %+v", c)
	}
	if c.RTSPUDPRTP != ":7000" || c.RTSPUDPRTCP != ":7001" || c.Limits.WriteTimeout != 3*time.Second || c.AnonymousRead == nil || *c.AnonymousRead {
		t.Errorf("env: %+v", c)
	}
}

func TestFlagHelpShowsDefaults(t *testing.T) {
	var b strings.Builder
	WriteFlags(&b)
	out := b.String()
	for _, want := range []string{"--http ADDR", "default :8000", "CAMFEED_HTTP", "--buffer SIZE", "default 35s", "--lag-budget DURATION", "default 500ms",
		"--webrtc-hosts IP (or --webrtc-host)", "--limits-max-viewers N", "default 64", "--hflip\n", "--config FILE", "default 1m ("} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if strings.Contains(out, " string") {
		t.Errorf("help shows a bare type:\n%s", out)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"webrtc_hosts", "http", "lag_budget", "width"}
	for in, want := range map[string]string{"webrtc_host": "webrtc_hosts", "htpp": "http", "lag-budget": "lag_budget", "widht": "width", "camera_model": ""} {
		if got := Suggest(in, keys); got != want {
			t.Errorf("Suggest(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzConfigFile: any file gives a config or an error in words, never a
// panic, and an error about a line names that line.
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"http: \":1\"\nhtpp: x\n",
		"feeds:\n  cam:\n    source: test\n    width: wide\n",
		"limits: {max_viewers: many}\n",
		"users:\n  - name: a\n    permisions: [read]\n",
		"tls:\n  self_signed: maybe\n",
		"buffer: lots\nwebrtc_host: [1.2.3.4]\n",
		"- a\n- b\n",
		"feeds: [1, 2]\n",
		": :\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		err := c.decode(data)
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("an empty error")
		}
		_ = keysByLine(data)
	})
}
