package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/pihealth"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestPiHealth: with a (fake) vcgencmd and thermal zone, the status and
// the metrics carry the SoC temperature and the throttling flags, and
// under-voltage is logged once in words; with neither, nothing of it
// shows and nothing is logged.
func TestPiHealth(t *testing.T) {
	dir := t.TempDir()
	vcg, zone := filepath.Join(dir, "vcgencmd"), filepath.Join(dir, "temp")
	if err := os.WriteFile(vcg, []byte("#!/bin/sh\necho throttled=0x50005\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zone, []byte("63250\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noTool := func(string) (string, error) { return "", errors.New("not found") }
	for _, tc := range []struct {
		name   string
		pi     pihealth.Config
		status []string // in /api/v1/status; none: no "pi" at all
		metric []string
	}{
		{"a pi", pihealth.Config{Vcgencmd: vcg, ThermalZone: zone, Interval: 20 * time.Millisecond},
			[]string{`"soc_temperature_celsius": 63.25`, `"raw": "0x50005"`},
			[]string{"camfeed_soc_temperature_celsius 63.25", `camfeed_throttled{flag="under_voltage",when="now"} 1`}},
		{"not a pi", pihealth.Config{LookPath: noTool, ThermalZone: filepath.Join(dir, "none")}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.HTTP, cfg.RTSP, cfg.WebRTC = "127.0.0.1:0", "off", "off"
			cfg.Feeds[config.DefaultFeed].Source = "test"
			var logs testsupport.LogBuffer
			a, err := New(cfg, "test", slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			tc.pi.Log = a.log.With("component", "pihealth")
			a.Pi = pihealth.New(tc.pi)
			addrs := make(chan map[string]net.Addr, 1)
			a.Ready = func(m map[string]net.Addr) { addrs <- m }
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() { cancel(); <-done }()
			base := "http://" + (<-addrs)["http"].String()
			get := func(path string) string {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return string(b)
			}
			if tc.status == nil {
				if s, m := get("/api/v1/status"), get("/metrics"); strings.Contains(s, `"pi"`) ||
					strings.Contains(m, "camfeed_soc_temperature") || strings.Contains(m, "camfeed_throttled") ||
					strings.Contains(logs.String(), "pihealth") {
					t.Errorf("Pi health where there is none:\n%s\n%s", s, logs.String())
				}
				return
			}
			testsupport.Eventually(t, "a reading in the status", func() bool { return strings.Contains(get("/api/v1/status"), `"pi"`) })
			// A few more polls, which must not log the same flags again.
			first := a.Pi.Latest().At
			testsupport.Eventually(t, "three more readings", func() bool { return a.Pi.Latest().At.Sub(first) >= 3*tc.pi.Interval })
			s, m := get("/api/v1/status"), get("/metrics")
			for _, w := range tc.status {
				if !strings.Contains(s, w) {
					t.Errorf("%q not in the status:\n%s", w, s)
				}
			}
			for _, w := range tc.metric {
				if !strings.Contains(m, w) {
					t.Errorf("%q not in the metrics", w)
				}
			}
			if n := strings.Count(logs.String(), "under-voltage: the power supply is too weak; frames will drop"); n != 1 {
				t.Errorf("under-voltage logged %d times:\n%s", n, logs.String())
			}
		})
	}
}
