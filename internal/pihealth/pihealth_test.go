package pihealth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

var parseCases = []struct {
	in   string
	want Throttled
	err  bool
}{
	{"throttled=0x0\n", 0, false},
	{"throttled=0x50005\n", 0x50005, false},
	{"throttled=0xE0000", 0xe0000, false},
	{"VCHI initialization failed\n", 0, true},
	{"throttled=", 0, true},
	{"throttled=0x1ffffffff", 0, true},
}

func TestParseThrottled(t *testing.T) {
	for _, tc := range parseCases {
		got, err := ParseThrottled(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseThrottled(%q) = %#x, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Errorf("ParseThrottled(%q): %v is not ErrFormat", tc.in, err)
		}
	}
	// Bits 0-3 now, 16-19 since boot (0x50005: under-voltage and throttled,
	// now and since boot).
	v := Throttled(0x50005)
	var now, boot []string
	for _, f := range Flags() {
		if v.Now(f) {
			now = append(now, f.Name)
		}
		if v.SinceBoot(f) {
			boot = append(boot, f.Name)
		}
	}
	if strings.Join(now, ",") != "under_voltage,throttled" || strings.Join(boot, ",") != "under_voltage,throttled" {
		t.Errorf("0x50005: now %v, since boot %v", now, boot)
	}
	js, _ := json.Marshal(Throttled(0x20002))
	if string(js) != `{"raw":"0x20002","now":["arm_freq_capped"],"since_boot":["arm_freq_capped"]}` {
		t.Errorf("JSON %s", js)
	}
}

func TestParseTemperatures(t *testing.T) {
	if c, err := ParseMeasureTemp("temp=48.3'C\n"); err != nil || c != 48.3 {
		t.Errorf("measure_temp: %v, %v", c, err)
	}
	if c, err := ParseThermalZone("61850\n"); err != nil || c != 61.85 {
		t.Errorf("thermal zone: %v, %v", c, err)
	}
	for _, bad := range []string{"temp=hot", "48.3'C", "temp=999'C", "temp=NaN'C"} {
		if _, err := ParseMeasureTemp(bad); err == nil {
			t.Errorf("ParseMeasureTemp(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "warm", "999999999"} {
		if _, err := ParseThermalZone(bad); err == nil {
			t.Errorf("ParseThermalZone(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Add("temp=48.3'C")
	f.Add("61850")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseThrottled(s); err == nil {
			if _, err := v.MarshalJSON(); err != nil {
				t.Fatal(err)
			}
		}
		if c, err := ParseMeasureTemp(s); err == nil && !(c >= -100 && c <= 200) {
			t.Fatalf("%q: %v", s, c)
		}
		if c, err := ParseThermalZone(s); err == nil && !(c >= -100 && c <= 200) {
			t.Fatalf("%q: %v", s, c)
		}
	})
}

// fakePi is a fake vcgencmd whose get_throttled answer is a file the test
// rewrites, and a fake thermal zone.
type fakePi struct {
	dir, vcgencmd, zone string
}

func newFakePi(t *testing.T, script string) fakePi {
	t.Helper()
	d := t.TempDir()
	p := fakePi{dir: d, vcgencmd: filepath.Join(d, "vcgencmd"), zone: filepath.Join(d, "temp")}
	if script == "" {
		script = `case "$1" in
get_throttled) echo "throttled=$(cat "` + d + `/throttled")" ;;
measure_temp) echo "temp=47.2'C" ;;
*) echo "unknown command $1" >&2; exit 1 ;;
esac`
	}
	if err := os.WriteFile(p.vcgencmd, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.set(t, "0x0")
	return p
}

func (p fakePi) set(t *testing.T, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, "throttled"), []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
}

func noTool(string) (string, error) { return "", errors.New("not found") }

func TestMonitorLogsChangesOnce(t *testing.T) {
	pi := newFakePi(t, "")
	var logs testsupport.LogBuffer
	m := New(Config{Vcgencmd: pi.vcgencmd, ThermalZone: filepath.Join(pi.dir, "none"), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if !m.Available() || m.Latest() != nil {
		t.Fatalf("available %v, latest %+v", m.Available(), m.Latest())
	}
	ctx := context.Background()
	steps := []struct {
		value string
		lines []string // new log lines, in order
	}{
		{"0x0", nil},
		{"0x50005", []string{"under-voltage: the power supply is too weak; frames will drop", "throttled: the SoC slowed down"}},
		{"0x50005", nil},
		{"0x50004", []string{"under-voltage cleared"}},
		{"0x50000", []string{"throttling ended"}},
		{"0x50000", nil},
	}
	seen := 0
	for i, st := range steps {
		pi.set(t, st.value)
		m.poll(ctx)
		lines := logs.Lines()
		if logs.String() == "" {
			lines = nil
		}
		got := lines[seen:]
		seen = len(lines)
		if len(got) != len(st.lines) {
			t.Fatalf("step %d (%s): logged %q, want %q", i, st.value, got, st.lines)
		}
		for j, want := range st.lines {
			if !strings.Contains(got[j], want) {
				t.Errorf("step %d (%s): line %q, want %q", i, st.value, got[j], want)
			}
		}
	}
	js, _ := json.Marshal(m.Latest())
	if !strings.Contains(string(js), `"soc_temperature_celsius":47.2`) ||
		!strings.Contains(string(js), `"throttled":{"raw":"0x50000","now":[],"since_boot":["under_voltage","throttled"]}`) {
		t.Errorf("reading %s", js)
	}
}

func TestMonitorFirstReadingSaysSinceBoot(t *testing.T) {
	pi := newFakePi(t, "")
	pi.set(t, "0x10000")
	var logs testsupport.LogBuffer
	m := New(Config{Vcgencmd: pi.vcgencmd, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	m.poll(context.Background())
	m.poll(context.Background())
	if l := logs.Lines(); len(l) != 1 || !strings.Contains(l[0], "since boot, not now: under-voltage") {
		t.Errorf("logged %q", l)
	}
}

func TestMonitorThermalZoneOnly(t *testing.T) {
	pi := newFakePi(t, "")
	if err := os.WriteFile(pi.zone, []byte("61850\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Config{LookPath: noTool, ThermalZone: pi.zone})
	if !m.Available() {
		t.Fatal("a thermal zone is something to read")
	}
	m.poll(context.Background())
	js, _ := json.Marshal(m.Latest())
	if !strings.Contains(string(js), `"soc_temperature_celsius":61.85`) || strings.Contains(string(js), "throttled") {
		t.Errorf("reading %s", js)
	}
}

func TestMonitorVcgencmdFailsLoggedOnce(t *testing.T) {
	pi := newFakePi(t, `echo "VCHI initialization failed" >&2; exit 1`)
	if err := os.WriteFile(pi.zone, []byte("50000"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testsupport.LogBuffer
	m := New(Config{Vcgencmd: pi.vcgencmd, ThermalZone: pi.zone, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		m.poll(context.Background())
	}
	if l := logs.Lines(); len(l) != 1 || !strings.Contains(l[0], "VCHI initialization failed") {
		t.Errorf("logged %q", l)
	}
	if r := m.Latest(); r.Throttled != nil || r.TemperatureC == nil || *r.TemperatureC != 50 {
		t.Errorf("reading %+v", r)
	}
}

func TestMonitorNothingToRead(t *testing.T) {
	var logs testsupport.LogBuffer
	m := New(Config{LookPath: noTool, ThermalZone: filepath.Join(t.TempDir(), "none"), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if m.Available() {
		t.Fatal("nothing to read, but available")
	}
	m.Run(context.Background()) // returns at once
	if m.Latest() != nil || logs.String() != "" {
		t.Errorf("latest %+v, logs %q", m.Latest(), logs.String())
	}
	var nilMonitor *Monitor
	if nilMonitor.Available() || nilMonitor.Latest() != nil {
		t.Error("a nil monitor has nothing")
	}
}

func TestMonitorRunStopsWithContext(t *testing.T) {
	testsupport.CheckGoroutines(t)
	pi := newFakePi(t, "")
	m := New(Config{Vcgencmd: pi.vcgencmd, Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	testsupport.Eventually(t, "a second reading", func() bool {
		r := m.Latest()
		return r != nil && r.Throttled != nil
	})
	first := m.Latest().At
	testsupport.Eventually(t, "a second reading", func() bool { return m.Latest().At.After(first) })
	cancel()
	<-done
}
