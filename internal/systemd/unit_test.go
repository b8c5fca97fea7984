package systemd

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test ./internal/systemd -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestUnitGolden(t *testing.T) {
	golden(t, "camfeed.service.golden", Unit(DefaultUnitOptions()))
}

func TestUnitRecordingsAndGroups(t *testing.T) {
	o := DefaultUnitOptions()
	o.Groups = []string{"video", "render"}
	o.WritePaths = []string{"/srv/clips/", "", "/srv/clips", "/run/camfeed/cam.h264", "/var/lib/camfeed/tls", "/media/usb disk"}
	o.FeedBudgets = []int64{16 << 20, 8 << 20}
	golden(t, "recordings.service.golden", Unit(o))
}

func TestUnitLines(t *testing.T) {
	tests := []struct {
		name string
		opts UnitOptions
		want []string
		not  []string
	}{
		{"zero value gets defaults", UnitOptions{}, []string{
			"Type=notify", "Restart=always", "RestartSec=2s", "WatchdogSec=10s", "User=camfeed",
			"ExecStart=/usr/bin/camfeed\n", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
			"NoNewPrivileges=yes", "RuntimeDirectory=camfeed", "MemoryMax=244M", "Environment=GOMEMLIMIT=180MiB",
		}, []string{"ReadWritePaths", "SupplementaryGroups"}},
		{"binary in a home keeps homes readable", UnitOptions{Binary: "/home/pi/go/bin/camfeed", Config: "/home/pi/cam.yaml"},
			[]string{"ExecStart=/home/pi/go/bin/camfeed --config /home/pi/cam.yaml", "ProtectHome=read-only"}, nil},
		{"quoting and specifiers", UnitOptions{Binary: "/opt/cam feed/camfeed", Config: "/etc/camfeed/100%.yaml"},
			[]string{`ExecStart="/opt/cam feed/camfeed" --config /etc/camfeed/100%%.yaml`}, nil},
		{"fine durations and explicit memory", UnitOptions{RestartSec: 1500 * time.Millisecond, WatchdogSec: 30 * time.Second, MemoryMax: 300 << 20},
			[]string{"RestartSec=1500ms", "WatchdogSec=30s", "MemoryMax=300M"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := Unit(tt.opts)
			for _, w := range tt.want {
				if !strings.Contains(u, w) {
					t.Errorf("unit lacks %q:\n%s", w, u)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(u, n) {
					t.Errorf("unit has %q:\n%s", n, u)
				}
			}
		})
	}
}

func TestFeedBudget(t *testing.T) {
	if got := FeedBudget(1<<20, time.Minute, 0); got != 1<<20 {
		t.Errorf("bytes: %d", got)
	}
	if got := FeedBudget(0, 8*time.Second, 0); got != 10_000_000 {
		t.Errorf("8s at the default 10 Mbit/s: %d, want 10000000", got)
	}
	if got := FeedBudget(0, 30*time.Second, 2_000_000); got != 7_500_000 {
		t.Errorf("30s at 2 Mbit/s: %d, want 7500000", got)
	}
	if got := MemoryMax([]int64{8 << 20, 8 << 20}); got != (128+2*(16+64))<<20 {
		t.Errorf("MemoryMax for two 8MiB feeds: %d", got)
	}
}
