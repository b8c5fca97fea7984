package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "camfeed ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := runCmd("help"); code != 0 || !strings.Contains(out, "service install") {
		t.Errorf("help: %d %q", code, out)
	}
}

// TestTestsrc: camfeed testsrc writes a decodable Annex-B stream.
func TestTestsrc(t *testing.T) {
	code, out, errs := runCmd("testsrc", "--width", "320", "--height", "240", "--frames", "31", "--fast")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	p := h264.NewParser(h264.ParserConfig{})
	var units, keys int
	emit := func(au *h264.AccessUnit) {
		units++
		if au.Keyframe {
			keys++
		}
	}
	p.Write([]byte(out), p0, emit)
	p.Flush(p0, emit)
	if units != 31 || keys != 2 {
		t.Fatalf("%d units, %d keyframes; want 31, 2", units, keys)
	}
	if _, _, info, _ := p.Params(); info.Width != 320 || info.Height != 240 {
		t.Fatalf("size %dx%d", info.Width, info.Height)
	}
	if code, _, errs := runCmd("testsrc", "--width", "100"); code != 2 || !strings.Contains(errs, "width") {
		t.Errorf("bad width: %d %q", code, errs)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("feeds:\n  cam:\n    source: test\n"), 0o600)
	if code, out, errs := runCmd("--check-config", good); code != 0 || !strings.Contains(out, "ok (1 feed: cam)") {
		t.Errorf("good: %d %q %q", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("feeds:\n  cam:\n    sauce: test\n"), 0o600)
	if code, _, errs := runCmd("--check-config", bad); code != 1 || !strings.Contains(errs, `line 3: unknown key "sauce"`) {
		t.Errorf("bad: %d %q", code, errs)
	}
	if code, _, errs := runCmd("--http", "nonsense"); code != 2 || !strings.Contains(errs, "http:") {
		t.Errorf("bad flag: %d %q", code, errs)
	}
}

func TestPasswdToken(t *testing.T) {
	code, out, _ := runCmd("passwd", "--token")
	if code != 0 || !strings.Contains(out, "sha256:") {
		t.Errorf("passwd --token: %d %q", code, out)
	}
}

func TestServiceDryRun(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "camfeed.yaml")
	os.WriteFile(cfg, []byte("buffer: 10s\nfeeds:\n  cam:\n    source: test\n"), 0o600)
	code, out, errs := runCmd("service", "install", "--dry-run", "--config", cfg)
	want := "--config " + cfg
	if strings.HasPrefix(cfg, "/tmp/") { // hidden by PrivateTmp: copied to /etc/camfeed
		want = "--config /etc/camfeed/camfeed.yaml"
	}
	if code != 0 || !strings.Contains(out, "Type=notify") || !strings.Contains(out, want) {
		t.Errorf("service install --dry-run: %d %q %q", code, out, errs)
	}
}

var p0 = time.Unix(1_700_000_000, 0)

// TestHelp: one help text, on stdout, with the commands, the flags and
// their defaults; --help, -h and help give the same.
func TestHelp(t *testing.T) {
	code, out, errs := runCmd("--help")
	if code != 0 || errs != "" {
		t.Fatalf("--help: %d, stderr %q", code, errs)
	}
	for _, want := range []string{"--check-config FILE", "cameras [--json]", "service install", "testsrc", "passwd", "version",
		"--http ADDR", "default :8000", "CAMFEED_HTTP", "--lag-budget DURATION", "default 500ms", "--limits-max-viewers N"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(out, " string\n") || strings.Contains(out, " string ") {
		t.Errorf("--help shows a bare type")
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"--config", "x.yaml", "--help"}} {
		if code, o, _ := runCmd(args...); code != 0 || o != out {
			t.Errorf("%v: %d, not the same help", args, code)
		}
	}
}

// TestVersionFlag: --version and version agree.
func TestVersionFlag(t *testing.T) {
	code, out, _ := runCmd("--version")
	_, want, _ := runCmd("version")
	if code != 0 || out != want || !strings.HasPrefix(out, "camfeed ") {
		t.Errorf("--version: %d %q; version: %q", code, out, want)
	}
}

// TestMistypedFlag: a typo gets one line with the flag that was meant and
// a pointer to --help, not the usage.
func TestMistypedFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--widht", "640"}, "camfeed: unknown flag --widht; did you mean --width? (camfeed --help lists them)\n"},
		{[]string{"--lag-budgte=1s"}, "camfeed: unknown flag --lag-budgte; did you mean --lag-budget? (camfeed --help lists them)\n"},
		{[]string{"--zzzzzz"}, "camfeed: unknown flag --zzzzzz (camfeed --help lists them)\n"},
		{[]string{"servcie"}, "camfeed: unknown command \"servcie\"; did you mean service? (camfeed --help lists the commands: cameras, doctor, passwd, service, testsrc, version, help)\n"},
	} {
		code, out, errs := runCmd(tc.args...)
		if code != 2 || out != "" || errs != tc.want {
			t.Errorf("%v: %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
}
