package clip

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// switchSize makes src publish pictures of w x h from its next unit on, as
// a camera does whose mode was changed without a restart.
func (s *source) switchSize(t testing.TB, w, h int) {
	t.Helper()
	g, err := testsrc.New(testsrc.Config{Width: w, Height: h, FPS: s.fps, Intra: 15})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.g = g
	s.mu.Unlock()
}

// TestHostileClipAcrossResolutionChange: a clip of the last 25 s, when the
// picture size changed 15 s ago, holds only the newest 15 s, says it is
// truncated, and decodes without one error (it used to mix both sizes
// under one sample entry: hundreds of decode errors, "not truncated").
func TestHostileClipAcrossResolutionChange(t *testing.T) {
	needTool(t, "ffmpeg")
	src := newSource(t, 30, 15)
	src.switchSize(t, 320, 240)
	end := time.Now()
	for i := 25 * 30; i > 0; i-- {
		if i == 15*30 {
			src.switchSize(t, 640, 480)
		}
		src.publish(end.Add(-time.Duration(i) * time.Second / 30))
	}
	ts := serve(t, New(Config{}, feeds{"cam": src.h}, nil))
	resp, body := get(t, ts.URL+"/cam/clip.mp4?seconds=25")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Camfeed-Clip-Truncated"); got != "true" {
		t.Errorf("X-Camfeed-Clip-Truncated %q across a size change, want true", got)
	}
	path := writeTemp(t, body)
	decodes(t, path)
	p := ffprobe(t, path)
	if p.Width != 640 || p.Height != 480 {
		t.Errorf("clip is %dx%d, want the newest size 640x480", p.Width, p.Height)
	}
	if p.Duration < 14 || p.Duration > 15.5 {
		t.Errorf("clip lasts %.3f s, want the 15 s since the change", p.Duration)
	}
}

// TestHostileClipAfterResolutionChange: when the size changes while an
// after= clip waits, the clip ends at the change, truncated, and decodes
// cleanly.
func TestHostileClipAfterResolutionChange(t *testing.T) {
	needTool(t, "ffmpeg")
	src := newSource(t, 30, 15)
	src.switchSize(t, 320, 240)
	src.fill(5)
	ts := serve(t, New(Config{}, feeds{"cam": src.h}, nil))
	type result struct {
		code      int
		truncated string
		body      []byte
	}
	done := make(chan result, 1)
	go func() {
		resp, body := get(t, ts.URL+"/cam/clip.mp4?seconds=3&after=3")
		done <- result{resp.StatusCode, resp.Header.Get("X-Camfeed-Clip-Truncated"), body}
	}()
	for src.h.Stats().Viewers["clip"] == 0 {
		time.Sleep(time.Millisecond)
	}
	// One more second at the old size, then the new size, live.
	next := time.Now()
	for i := range 5 * 30 {
		if i == 30 {
			src.switchSize(t, 640, 480)
		}
		time.Sleep(time.Until(next))
		src.publish(next)
		next = next.Add(time.Second / 30)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no clip 30 s after asking")
	}
	if res.code != 200 {
		t.Fatalf("status %d: %s", res.code, res.body)
	}
	if res.truncated != "true" {
		t.Errorf("X-Camfeed-Clip-Truncated %q, want true", res.truncated)
	}
	path := writeTemp(t, res.body)
	decodes(t, path)
	if p := ffprobe(t, path); p.Width != 320 || p.Height != 240 {
		t.Errorf("clip is %dx%d, want 320x240, the size when it was asked for", p.Width, p.Height)
	}
}

// doHdr is do with request headers.
func doHdr(t testing.TB, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestHostileClipSlots: a reader filled every clip slot with after=60
// downloads, and for a minute the admin's event-clip POST and every other
// feed's clips got 503 (the event was lost). Now one user gets a few
// slots, one feed a few more, and saves never wait for downloads.
func TestHostileClipSlots(t *testing.T) {
	cam, door := newSource(t, 30, 30), newSource(t, 30, 30)
	cam.fill(3)
	door.fill(3)
	srv := New(Config{
		Dir: t.TempDir(),
		// Users as the auth layer would name them.
		Who: func(r *http.Request) string { return r.Header.Get("X-Test-User") },
	}, feeds{"cam": cam.h, "door": door.h}, nil)
	t.Cleanup(srv.Close)
	ts := serve(t, srv)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	codes := make(chan int, 64)
	hog := func(user string) {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/cam/clip.mp4?seconds=1&after=60", nil)
			req.Header.Set("X-Test-User", user)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // cancelled at the end: it held a slot
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	// One reader asks for all 16 slots at once: it gets its share.
	for range DefaultMaxConcurrent {
		hog("mallory")
	}
	refused := map[int]int{}
	for range DefaultMaxConcurrent - DefaultMaxPerUser {
		select {
		case c := <-codes:
			refused[c]++
		case <-time.After(30 * time.Second):
			t.Fatalf("refusals so far %v; want %d", refused, DefaultMaxConcurrent-DefaultMaxPerUser)
		}
	}
	if refused[http.StatusTooManyRequests] != DefaultMaxConcurrent-DefaultMaxPerUser {
		t.Errorf("one user's extra downloads answered %v, want all 429", refused)
	}
	// More readers of the same feed: the feed's cap holds.
	for i := range DefaultMaxConcurrent {
		hog(fmt.Sprint("sybil", i))
	}
	refused = map[int]int{}
	for range DefaultMaxConcurrent - (DefaultMaxPerFeed - DefaultMaxPerUser) {
		select {
		case c := <-codes:
			refused[c]++
		case <-time.After(30 * time.Second):
			t.Fatalf("refusals so far %v", refused)
		}
	}
	if refused[http.StatusServiceUnavailable] != DefaultMaxConcurrent-(DefaultMaxPerFeed-DefaultMaxPerUser) {
		t.Errorf("downloads past the feed's cap answered %v, want all 503", refused)
	}
	for cam.h.Stats().Viewers["clip"] < DefaultMaxPerFeed {
		time.Sleep(10 * time.Millisecond)
	}

	// During the attack: the admin's event clip is saved...
	resp, b := doHdr(t, "POST", ts.URL+"/api/v1/feeds/cam/clips?seconds=2", map[string]string{"X-Test-User": "admin"})
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("admin's save during the attack: %d %s", resp.StatusCode, b)
	}
	resp, b = doHdr(t, "POST", ts.URL+"/api/v1/feeds/cam/clips?seconds=1&after=1", map[string]string{"X-Test-User": "admin"})
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("admin's after= save during the attack: %d %s", resp.StatusCode, b)
	}
	// ...another feed's viewer gets a clip...
	resp, b = doHdr(t, "GET", ts.URL+"/door/clip.mp4?seconds=1", map[string]string{"X-Test-User": "alice"})
	if resp.StatusCode != http.StatusOK || len(b) == 0 {
		t.Errorf("another feed's clip during the attack: %d %s", resp.StatusCode, b)
	}
	// ...and so does another reader of the same feed once one hog is done
	// (here: its slots are the feed's, so it waits its turn).
	resp, _ = doHdr(t, "GET", ts.URL+"/cam/clip.mp4?seconds=1", map[string]string{"X-Test-User": "alice"})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a clip of the full feed: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestHostileClipSaveBurst: with no users, 110 anonymous saves pushed out
// the 100 clips kept before them, and a cross-origin POST (any web page a
// household member opens) was accepted. Now cross-origin writes get 403,
// and a save that would delete a clip saved within the minute gets 429
// with the reason; the saved clips stay.
func TestHostileClipSaveBurst(t *testing.T) {
	src := newSource(t, 30, 30)
	src.fill(3)
	const keep = 5
	srv := New(Config{Dir: t.TempDir(), MaxSaved: keep}, feeds{"cam": src.h}, nil)
	t.Cleanup(srv.Close)
	ts := serve(t, srv)
	post := ts.URL + "/api/v1/feeds/cam/clips?seconds=1"
	evil := map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}

	if resp, b := doHdr(t, "POST", post, evil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "cross-origin") {
		t.Errorf("cross-origin POST: %d %s", resp.StatusCode, b)
	}
	if resp, b := doHdr(t, "POST", post, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST from an old browser: %d %s", resp.StatusCode, b)
	}
	var names []string
	for i := range keep + 3 {
		hdr := map[string]string{}
		if i == 0 {
			// The viewer page itself (same origin) may save.
			hdr = map[string]string{"Origin": ts.URL, "Sec-Fetch-Site": "same-origin"}
		}
		resp, b := doHdr(t, "POST", post, hdr)
		switch {
		case i < keep && resp.StatusCode == http.StatusCreated:
			var r saveResponse
			json.Unmarshal(b, &r)
			names = append(names, r.Name)
		case i >= keep && resp.StatusCode == http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "would delete a clip saved only") {
				t.Errorf("refused save: Retry-After %q, %s", resp.Header.Get("Retry-After"), b)
			}
		default:
			t.Fatalf("save %d: %d %s", i+1, resp.StatusCode, b)
		}
	}
	l := list(t, ts.URL)
	if len(l.Clips) != keep || l.Clips[keep-1].Name != names[0] {
		t.Errorf("after the burst %d clips listed, oldest %v; want the first %d kept", len(l.Clips), l.Clips, keep)
	}
	// Cross-origin DELETE is refused too.
	victim := ts.URL + savedURL("cam", names[0])
	if resp, b := doHdr(t, "DELETE", victim, evil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin DELETE: %d %s", resp.StatusCode, b)
	}
	// The owner makes room by deleting a clip, and saves.
	if resp, b := do(t, "DELETE", victim); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "POST", post); resp.StatusCode != http.StatusCreated {
		t.Errorf("save after making room: %d %s", resp.StatusCode, b)
	}
}
