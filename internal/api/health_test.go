package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/feed"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

type feedList []*feed.Feed

func (l feedList) Feeds() []*feed.Feed { return l }

// runFeed runs a feed of the test pattern until the test ends.
func runTestFeed(t *testing.T, name string, cfg testsrc.Config) *feed.Feed {
	t.Helper()
	f := feed.New(name, &source.Test{Config: cfg}, hub.New(hub.Config{}), feed.Options{}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func serveHealth(t *testing.T, h *Handlers) string {
	t.Helper()
	return testsupport.Serve(t, h.Register) + "/healthz"
}

func healthz(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealth polls url until its status is code, for up to 20 s.
func waitHealth(t *testing.T, url string, code int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, body := healthz(t, url)
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d after 20 s, want %d: %s", got, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHostileHealthWithoutKeyframes: a source that sent one keyframe and
// then only P-frames kept /healthz at 200 while a new viewer got one
// frame and then nothing. Health now fails once the newest keyframe is
// older than the bound, and says so; a well-behaved feed beside it stays
// healthy.
func TestHostileHealthWithoutKeyframes(t *testing.T) {
	good := runTestFeed(t, "good", testsrc.Config{Width: 64, Height: 64, FPS: 30, Intra: 10})
	bad := runTestFeed(t, "bad", testsrc.Config{Width: 64, Height: 64, FPS: 30, Intra: testsrc.MaxIntra})
	goodURL := serveHealth(t, &Handlers{Feeds: feedList{good}, KeyframeAge: time.Second})
	url := serveHealth(t, &Handlers{Feeds: feedList{good, bad}, KeyframeAge: time.Second})

	waitHealth(t, goodURL, http.StatusOK)
	// At first the bad feed is unhealthy for having sent nothing yet ("no
	// video yet"); wait for its keyframe to age past the bound.
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; {
		body = waitHealth(t, url, http.StatusServiceUnavailable)
		if strings.Contains(body, "no keyframe for") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "feed bad: no keyframe for") || strings.Contains(body, "feed good") {
		t.Errorf("/healthz says %q; want only feed bad, without a keyframe", body)
	}
	// The bad feed still sends frames: it is the keyframes that are missing.
	if st := bad.Status(); time.Since(st.LastUnit) > 5*time.Second {
		t.Errorf("bad feed's last unit %s ago; the test wants a feed that still sends", time.Since(st.LastUnit))
	}
	if code, body := healthz(t, goodURL); code != http.StatusOK {
		t.Errorf("healthy feed alone: %d %s", code, body)
	}
}
