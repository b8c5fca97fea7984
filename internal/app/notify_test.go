package app

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/systemd"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestSystemdNotify runs camfeed against a real unix datagram socket in
// systemd's place: READY=1 once video flows, WATCHDOG=1 while the feed is
// healthy and no more once it is wedged, STATUS= lines, STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type msg struct {
		at   time.Time
		text string
	}
	var mu sync.Mutex
	var msgs []msg
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, msg{time.Now(), string(buf[:n])})
			mu.Unlock()
		}
	}()
	file := testStream(t, 30, nil)
	cfg := config.Default()
	cfg.HTTP, cfg.RTSP, cfg.WebRTC = "127.0.0.1:0", "off", "off"
	cfg.StallTimeout = 10 * time.Minute // let the feed stay wedged
	// One second of video, then silence.
	cfg.Feeds["cam"].Source = fmt.Sprintf("exec:cat %s; exec sleep 600", file)
	a, err := New(cfg, "test", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	a.Notifier = systemd.NewNotifier(sock, 200*time.Millisecond)
	a.WedgeAfter = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// Wait for the wedge to be noticed (however long a busy machine takes
	// to start), then a second more for the watchdog to stay quiet.
	wedged := regexp.MustCompile(`no video for ([2-9]|[1-9][0-9]+)s`)
	testsupport.Eventually(t, "STATUS saying, after READY, that the feed has had no video for 2 s", func() bool {
		mu.Lock()
		defer mu.Unlock()
		ready := false
		for _, m := range msgs {
			ready = ready || strings.Contains(m.text, "READY=1")
			if ready && wedged.MatchString(m.text) {
				return true
			}
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	time.Sleep(100 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	var ready, stopping, status bool
	var lastWatchdog time.Time
	var firstWatchdog time.Time
	for _, m := range msgs {
		switch {
		case strings.Contains(m.text, "READY=1"):
			ready = true
		case strings.Contains(m.text, "STOPPING=1"):
			stopping = true
		}
		if strings.Contains(m.text, "WATCHDOG=1") {
			if firstWatchdog.IsZero() {
				firstWatchdog = m.at
			}
			lastWatchdog = m.at
		}
		if strings.Contains(m.text, "STATUS=cam: ") {
			status = true
		}
	}
	if !ready || !stopping || !status || firstWatchdog.IsZero() {
		t.Fatalf("ready %v stopping %v status %v watchdog %v: %v", ready, stopping, status, !firstWatchdog.IsZero(), msgs)
	}
	// The video ended about a second in; a second later it is wedged and
	// the watchdog must stop well before the end of the run.
	var end time.Time
	for _, m := range msgs {
		if strings.Contains(m.text, "STOPPING=1") {
			end = m.at
		}
	}
	if end.Sub(lastWatchdog) < 500*time.Millisecond {
		t.Errorf("WATCHDOG=1 went on while the feed was wedged: last %v before stop", end.Sub(lastWatchdog))
	}
	var said bool
	for _, m := range msgs {
		if strings.Contains(m.text, "no video for") {
			said = true
		}
	}
	if !said {
		t.Errorf("STATUS never said the feed had no video: %v", msgs)
	}
}
