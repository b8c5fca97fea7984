package app

import (
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestReloadHTTPOffThenShutdown: a reload that sets http: off (which needs
// a restart) changes nothing that Run started, so the next shutdown still
// stops the HTTP server it started and returns. It hung forever when Run
// read the reloaded config to decide what to stop; under -race the
// reload racing Run's reads of the config showed too.
func TestReloadHTTPOffThenShutdown(t *testing.T) {
	logs := &testsupport.LogBuffer{}
	a, addr, cancel, done := runOwned(t, logs, nil)
	cfg := a.cfg

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
	resp, cancelGet := httpGet(t, "http://"+addr.String()+"/healthz", 5*time.Second)
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
