package clip

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

func do(t testing.TB, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type listing struct {
	Feed  string      `json:"feed"`
	Clips []SavedClip `json:"clips"`
}

func list(t testing.TB, url string) listing {
	t.Helper()
	resp, b := do(t, "GET", url+"/api/v1/feeds/cam/clips")
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	var l listing
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSavedClips(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	src := newSource(t, 30, 30)
	src.fill(6)
	dir := t.TempDir()
	// A part file left by a crash goes at start.
	os.MkdirAll(filepath.Join(dir, "cam"), 0o755)
	stale := filepath.Join(dir, "cam", "cam-20250101T000000.000Z.mp4.part")
	os.WriteFile(stale, []byte("junk"), 0o644)
	srv := New(Config{Dir: dir, MaxSaved: 2, KeepFor: -1}, feeds{"cam": src.h}, nil)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("part file left by a crash was not removed")
	}
	ts := testsupport.Serve(t, srv.Register)

	var names []string
	for range 3 {
		resp, b := do(t, "POST", ts+"/api/v1/feeds/cam/clips?seconds=2")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("save: %d %s", resp.StatusCode, b)
		}
		var r saveResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if !r.Ready || math.Abs(r.Seconds-2) > 1.0/30 || !nameRE.MatchString(r.Name) || resp.Header.Get("Location") != r.URL {
			t.Errorf("save answer %+v, Location %q", r, resp.Header.Get("Location"))
		}
		names = append(names, r.Name)
	}
	if names[0] == names[1] {
		t.Error("two clips got the same name")
	}
	// MaxSaved 2: the first is gone, the newest is listed first.
	l := list(t, ts)
	if len(l.Clips) != 2 || l.Clips[0].Name != names[2] || l.Clips[1].Name != names[1] {
		t.Fatalf("listed %+v, saved %v", l.Clips, names)
	}
	c := l.Clips[0]
	if math.Abs(c.Seconds-2) > 1.0/30 || c.Bytes == 0 || c.Start.IsZero() || time.Since(c.Start) > time.Minute {
		t.Errorf("listed %+v", c)
	}
	resp, body := do(t, "GET", ts+c.URL)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || int64(len(body)) != c.Bytes {
		t.Fatalf("download: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	p := testsupport.FFprobe(t, writeTemp(t, body))
	if math.Abs(p.Duration-2) > 1.0/30 || !p.FirstKey {
		t.Errorf("saved clip: %+v", p)
	}
	if resp, _ := do(t, "DELETE", ts+c.URL); resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "DELETE", ts+c.URL); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %d", resp.StatusCode)
	}
	if l := list(t, ts); len(l.Clips) != 1 {
		t.Errorf("%d clips after delete", len(l.Clips))
	}
	for _, bad := range []string{"..%2F..%2Fetc%2Fpasswd", "x.mp4", "cam-20250101T000000.000Z.mp4.part", ".hidden"} {
		if resp, _ := do(t, "GET", ts+"/api/v1/feeds/cam/clips/"+bad); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d", bad, resp.StatusCode)
		}
	}
}

func TestSaveAfter(t *testing.T) {
	src := newSource(t, 30, 30)
	src.runSteady(t)
	time.Sleep(1200 * time.Millisecond)
	srv := New(Config{Dir: t.TempDir()}, testfeed.Feeds{"cam": src.h}, nil)
	ts := testsupport.Serve(t, srv.Register)
	resp, b := do(t, "POST", ts+"/api/v1/feeds/cam/clips?seconds=1&after=1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("save: %d %s", resp.StatusCode, b)
	}
	var r saveResponse
	json.Unmarshal(b, &r)
	if r.Ready || r.ReadyAt.IsZero() {
		t.Errorf("answer %+v", r)
	}
	if l := list(t, ts); len(l.Clips) != 0 {
		t.Errorf("clip listed before it is complete: %+v", l.Clips)
	}
	time.Sleep(time.Until(r.ReadyAt) + 500*time.Millisecond)
	l := list(t, ts)
	if len(l.Clips) != 1 || l.Clips[0].Name != r.Name || math.Abs(l.Clips[0].Seconds-2) > 1.0/30 {
		t.Fatalf("listed %+v", l.Clips)
	}
	// Close waits for saves in progress, and a save cut short leaves nothing.
	do(t, "POST", ts+"/api/v1/feeds/cam/clips?seconds=1&after=30")
	srv.Close()
	parts, _ := filepath.Glob(filepath.Join(srv.cfg.Dir, "cam", "*.part"))
	if len(parts) != 0 || len(list(t, ts).Clips) != 1 {
		t.Errorf("after Close: parts %v", parts)
	}
}

func TestSaveRefused(t *testing.T) {
	src := newSource(t, 30, 30)
	src.fill(2)
	off := testsupport.Serve(t, New(Config{}, testfeed.Feeds{"cam": src.h}, nil).Register)
	resp, b := do(t, "POST", off+"/api/v1/feeds/cam/clips")
	if resp.StatusCode != http.StatusNotImplemented || string(b) != "saving clips is off: set the clips directory in the config\n" {
		t.Errorf("no dir: %d %q", resp.StatusCode, b)
	}
	srv := New(Config{Dir: t.TempDir(), MinFree: 100 << 20}, testfeed.Feeds{"cam": src.h}, nil)
	srv.free = func(string) (int64, error) { return 10 << 20, nil }
	full := testsupport.Serve(t, srv.Register)
	resp, b = do(t, "POST", full+"/api/v1/feeds/cam/clips")
	if resp.StatusCode != http.StatusInsufficientStorage || string(b) != "not enough free space to save a clip: 10 MiB free, 100 MiB kept free\n" {
		t.Errorf("disk full: %d %q", resp.StatusCode, b)
	}
	if resp, _ := do(t, "POST", full+"/api/v1/feeds/nope/clips"); resp.StatusCode != 404 {
		t.Errorf("unknown feed: %d", resp.StatusCode)
	}
}
