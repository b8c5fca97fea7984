package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "camfeed.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSampleConfigIsDefault proves the shipped camfeed.yaml says exactly
// what the binary does with no config.
func TestSampleConfigIsDefault(t *testing.T) {
	got, err := Load([]string{"--config", "camfeed.yaml"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got.Feeds[DefaultFeed].ExtraArgs = nil
	got.Users, got.TCPAllow, got.WebRTCHosts, got.STUN, got.AllowedOrigins, got.RTSPTransports = nil, nil, nil, nil, nil, nil
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("camfeed.yaml differs from Default():\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadOrder(t *testing.T) {
	file := writeFile(t, "http: \":9000\"\nlag_budget: 300ms\njoin: keyframe\n")
	env := []string{"CAMFEED_LAG_BUDGET=400ms", "CAMFEED_TCP=:9001", "CAMFEED_WIDTH=1280", "CAMFEED_HEIGHT=720"}
	c, err := Load([]string{"--config", file, "--tcp", ":9002", "--source", "test", "--hflip", "--webrtc-host", "10.0.0.2", "--webrtc-host", "203.0.113.7,10.0.0.3"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != ":9000" || c.LagBudget != 400*time.Millisecond || c.TCP != ":9002" || c.Join != "keyframe" {
		t.Fatalf("got http %q lag %v tcp %q join %q", c.HTTP, c.LagBudget, c.TCP, c.Join)
	}
	if got := strings.Join(c.WebRTCHosts, " "); got != "10.0.0.2 203.0.113.7 10.0.0.3" {
		t.Errorf("webrtc hosts %q", got)
	}
	f := c.Feeds[DefaultFeed]
	if f.Source != "test" || f.Width != 1280 || f.Height != 720 || !f.HFlip {
		t.Fatalf("feed %+v", f)
	}
	// CAMFEED_CONFIG names the file too.
	c, err = Load(nil, []string{"CAMFEED_CONFIG=" + file}, io.Discard)
	if err != nil || c.HTTP != ":9000" {
		t.Fatalf("CAMFEED_CONFIG: %v %v", c, err)
	}
}

func TestFeedsFromFile(t *testing.T) {
	file := writeFile(t, `
feeds:
  front:
    source: "exec:ffmpeg -i x -f h264 -"
    buffer: 30s
  back:
    source: test
    width: 320
    height: 240
`)
	c, err := Load([]string{"--config", file}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.FeedNames(), ","); got != "back,front" {
		t.Fatalf("feeds %s", got)
	}
	if e := c.Effective("front"); e.Buffer.Duration != 30*time.Second || e.LagBudget != 500*time.Millisecond {
		t.Fatalf("effective %+v", e)
	}
	if e := c.Effective("back"); e.Buffer.Duration != DefaultBuffer {
		t.Fatalf("effective %+v", e)
	}
}

// Error messages are part of the interface: tested word for word.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string
		env  []string
		want string
	}{
		{"unknown key", "http: \":1\"\nhtpp: \":2\"\n", nil, nil,
			`config FILE: line 2: unknown key "htpp"; did you mean http?`},
		{"singular key", "webrtc_host: [10.0.0.2]\n", nil, nil,
			`config FILE: line 1: unknown key "webrtc_host"; did you mean webrtc_hosts?`},
		{"limits key", "limits:\n  max_viewer: 3\n", nil, nil,
			`config FILE: line 2: unknown key "max_viewer"; did you mean max_viewers?`},
		{"wrong type", "http: \":8000\"\nfeeds:\n  cam:\n    source: test\n    width: wide\n", nil, nil,
			`config FILE: line 5: feeds.cam.width: "wide" is not a whole number`},
		{"wrong duration", "lag_budget: soon\n", nil, nil,
			`config FILE: line 1: lag_budget: "soon" is not a duration such as 500ms or 5s`},
		{"wrong nested type", "limits:\n  limit_loopback: maybe\n", nil, nil,
			`config FILE: line 2: limits.limit_loopback: "maybe" is not true or false`},
		{"typo flag", "", []string{"--widht", "640"}, nil, `unknown flag --widht; did you mean --width? (camfeed --help lists them)`},
		{"flag without value", "", []string{"--http"}, nil, `--http needs a value`},
		{"test pattern size", "", []string{"--source", "test", "--width", "641", "--height", "480"}, nil,
			`invalid config: feeds.cam: the test pattern cannot do that: width 641 is not a multiple of 16`},
		{"test pattern size in file", "feeds:\n  side:\n    source: test\n    width: 4000\n    height: 480\n", nil, nil,
			`invalid config: feeds.side: the test pattern cannot do that: width 4000 is out of range 64..1920`},
		{"unknown feed key", "feeds:\n  cam:\n    source: test\n    fps: 3\n", nil, nil,
			`config FILE: line 4: unknown key "fps"`},
		{"bad size", "buffer: lots\n", nil, nil, `config FILE: line 1: buffer: "lots" is not a size such as 8MiB or a duration such as 30s`},
		{"bad source", "", []string{"--source", "camera"}, nil,
			`invalid config: feeds.cam.source: "camera" is not a source; use auto, rpicam, test, stdin, publish, exec:COMMAND, file:PATH, tcp://HOST:PORT, tcp-listen://ADDR or rtsp://URL`},
		{"bad join", "", []string{"--join", "later"}, nil, `invalid config: feeds.cam.join: "later" is not one of instant, keyframe, next`},
		{"bad env duration", "", nil, []string{"CAMFEED_LAG_BUDGET=soon"}, `CAMFEED_LAG_BUDGET: "soon" is not a duration such as 500ms or 5s`},
		{"bad flag number", "", []string{"--width", "wide"}, nil, `--width: "wide" is not a whole number`},
		{"bad address", "", []string{"--http", "8000"}, nil, `invalid config: http: "8000" is not HOST:PORT or :PORT`},
		{"lag out of range", "", []string{"--lag-budget", "1ms"}, nil, `invalid config: feeds.cam.lag_budget: 1ms must be between 50ms and 1m`},
		{"half a size", "", []string{"--width", "640"}, nil, `invalid config: feeds.cam.width/height: give both or neither`},
		{"bad feed name", "feeds:\n  API:\n    source: test\n", nil, nil,
			`invalid config: feeds.API: a feed name is 1-32 of a-z 0-9 _ -`},
		{"stray argument", "", []string{"serve"}, nil, `unexpected argument "serve" (flags start with --)`},
		{"no clip slots", "clips_max_per_user: 0\n", nil, nil, `invalid config: clips_max_per_user: 0 must be between 1 and 10000`},
		{"min free as time", "clips_min_free: 30s\n", nil, nil, `invalid config: clips_min_free: 30s is not a number of bytes such as 256MiB`},
		{"keep for negative", "clips_keep_for: -1s\n", nil, nil, `invalid config: clips_keep_for: -1s must be between 0 (off) and 24h`},
		{"publish timeout", "publish_timeout: 10ms\n", nil, nil, `invalid config: publish_timeout: 10ms must be between 500ms and 5m`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			var file string
			if tc.file != "" {
				file = writeFile(t, tc.file)
				args = append([]string{"--config", file}, args...)
			}
			_, err := Load(args, tc.env, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			if file != "" {
				got = strings.ReplaceAll(got, file, "FILE")
			}
			if got != tc.want {
				t.Fatalf("error:\n%s\nwant:\n%s", got, tc.want)
			}
			if strings.HasPrefix(tc.want, "invalid config") && !errors.Is(err, ErrInvalid) {
				t.Fatal("not ErrInvalid")
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		spec string
		want Source
	}{
		{"", Source{Kind: SourceAuto}},
		{"rpicam", Source{Kind: SourceRPiCam}},
		{"exec:ffmpeg -i x -f h264 -", Source{Kind: SourceExec, Arg: "ffmpeg -i x -f h264 -"}},
		{"file:/tmp/a.h264", Source{Kind: SourceFile, Arg: "/tmp/a.h264"}},
		{"tcp://pi.local:8888", Source{Kind: SourceTCP, Arg: "pi.local:8888"}},
		{"tcp-listen://:8888", Source{Kind: SourceTCPListen, Arg: ":8888"}},
		{"rtsp://u:p@10.0.0.2/s", Source{Kind: SourceRTSP, Arg: "rtsp://u:p@10.0.0.2/s"}},
	}
	for _, tc := range tests {
		got, err := ParseSource(tc.spec)
		if err != nil || got != tc.want {
			t.Errorf("ParseSource(%q) = %+v, %v", tc.spec, got, err)
		}
	}
	for _, bad := range []string{"exec:", "file:", "tcp://8888", "tcp-listen://x", "rtsp://", "v4l2"} {
		if _, err := ParseSource(bad); err == nil {
			t.Errorf("ParseSource(%q) accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"8MiB": {Bytes: 8 << 20}, "500KB": {Bytes: 500_000}, "1048576": {Bytes: 1 << 20},
		"30s": {Duration: 30 * time.Second}, "1.5M": {Bytes: 3 << 19},
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %+v, %v", in, got, err)
		}
	}
}
