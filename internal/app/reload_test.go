package app

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestReloadHTTPOffThenShutdown: a reload that sets http: off (which needs
// a restart) changes nothing that Run started, so the next shutdown still
// stops the HTTP server it started and returns. It hung forever when Run
// read the reloaded config to decide what to stop; under -race the
// reload racing Run's reads of the config showed too.
func TestReloadHTTPOffThenShutdown(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP = "127.0.0.1:0"
	cfg.RTSP, cfg.WebRTC = "off", "off"
	cfg.Feeds[config.DefaultFeed].Source = "test"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testsupport.LogBuffer{}
	a, err := New(cfg, "test", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]net.Addr, 1)
	a.Ready = func(m map[string]net.Addr) { ready <- m }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var addrs map[string]net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("app did not start: %v", err)
	}

	next := *cfg
	next.HTTP = "off"
	if err := a.Reload(&next); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, "the reload logged http as needing a restart", func() bool {
		s := logs.String()
		return strings.Contains(s, "take effect only after a restart") && strings.Contains(s, "changes=[http]")
	})
	// The server started at launch still serves until shutdown.
	resp, cancelGet := httpGet(t, "http://"+addrs["http"].String()+"/healthz", 5*time.Second)
	resp.Body.Close()
	cancelGet()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(testsupport.Patience):
		t.Fatal("shutdown did not finish after a reload to http: off")
	}
}
