package record

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/clip"
	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/snapshot"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

func get(t testing.TB, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type listing struct {
	Feed     string          `json:"feed"`
	Status   Status          `json:"status"`
	Segments []listedSegment `json:"segments"`
	Current  *current        `json:"recording"`
}

func TestListAndDownload(t *testing.T) {
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	rr := start(t, Config{Dir: t.TempDir(), Segment: time.Second}, f)
	base := testsupport.Serve(t, rr.Recorder.Register)
	f.publish(3.5)
	rr.caughtUp(t, f)
	resp, b := get(t, base+"/api/v1/feeds/cam/recordings")
	var l listing
	if err := json.Unmarshal(b, &l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if l.Feed != "cam" || len(l.Segments) != 3 || l.Current == nil || l.Status.State != StateRecording || l.Status.Segments != 4 {
		t.Fatalf("listing %s", b)
	}
	s := l.Segments[0]
	resp, body := get(t, base+s.URL)
	disk, _ := os.ReadFile(filepath.Join(rr.dir, s.Name))
	if resp.StatusCode != 200 || string(body) != string(disk) || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("download: %d, %d bytes of %d", resp.StatusCode, len(body), len(disk))
	}
	for _, bad := range []string{"x.mp4", "..%2Fcam%2F" + s.Name, url.PathEscape(filepath.Base(rr.cur.part))} {
		if resp, _ := get(t, base+"/api/v1/feeds/cam/recordings/"+bad); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d", bad, resp.StatusCode)
		}
	}
}

// export fetches an export and checks it with ffprobe and ffmpeg.
func export(t *testing.T, base, query string) (*http.Response, testsupport.Probe) {
	t.Helper()
	resp, body := get(t, base+"/api/v1/feeds/cam/recordings/export?"+query)
	if resp.StatusCode != 200 {
		t.Fatalf("export %s: %d %s", query, resp.StatusCode, body)
	}
	path := filepath.Join(t.TempDir(), "export.mp4")
	os.WriteFile(path, body, 0o644)
	p := testsupport.FFprobe(t, path)
	testsupport.Decodes(t, path)
	if !p.FirstKey {
		t.Errorf("export %s does not start with a keyframe", query)
	}
	return resp, p
}

func TestExport(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	const fps, gop = 30, 15 // keyframes every 0.5 s
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: fps, Intra: gop})
	rr := start(t, Config{Dir: t.TempDir(), Segment: 2 * time.Second}, f)
	base := testsupport.Serve(t, rr.Recorder.Register)
	f.publish(9)
	rr.caughtUp(t, f)
	t0 := rr.segs[0].Start
	at := func(s float64) string {
		return t0.Add(time.Duration(s * float64(time.Second))).UTC().Format(time.RFC3339Nano)
	}
	frame, keyEvery := 1.0/fps, float64(gop)/fps
	for _, tc := range []struct{ from, to float64 }{
		{3.2, 7.5}, // across three segments
		{0, 9},     // everything, the segment being written included
		{2.6, 3.1}, // inside one
		{-5, 1},    // from before the first
	} {
		t.Run(fmt.Sprintf("%g-%g", tc.from, tc.to), func(t *testing.T) {
			resp, p := export(t, base, "from="+url.QueryEscape(at(tc.from))+"&to="+url.QueryEscape(at(tc.to)))
			from := max(tc.from, 0)
			start, _ := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Camfeed-Export-Start"))
			early := from - start.Sub(t0).Seconds()
			if early < -frame || early > keyEvery {
				t.Errorf("starts %.3f s before from, want 0 to one GOP (%.1f s)", early, keyEvery)
			}
			want := tc.to - from + early
			if tc.to >= 9 {
				// The newest GOP is still in memory, not on disk.
				want = 9 - keyEvery - from + early
			}
			// The end is at fragment (GOP) granularity too.
			if p.Duration < want-frame || p.Duration > want+keyEvery+frame {
				t.Errorf("export lasts %.3f s, want %.3f s (+ up to a GOP)", p.Duration, want)
			}
			if math.Abs(float64(p.Frames)-p.Duration*fps) > 1 {
				t.Errorf("%d frames in %.3f s: a gap or an overlap at a seam", p.Frames, p.Duration)
			}
			if resp.Header.Get("X-Camfeed-Export-Truncated") != "false" {
				t.Error("marked truncated")
			}
		})
	}
	t.Run("seconds", func(t *testing.T) {
		_, p := export(t, base, "seconds=60")
		if p.Duration < 9-keyEvery-frame {
			t.Errorf("last 60 s: %.3f s", p.Duration)
		}
	})
	for _, tc := range []struct {
		q    string
		code int
		body string
	}{
		{"", 400, "give from (and to), or seconds\n"},
		{"from=yesterday", 400, "from and to must be RFC 3339 times or Unix seconds\n"},
		{"seconds=-1", 400, "seconds must be a number above 0\n"},
		{"from=" + url.QueryEscape(at(5)) + "&to=" + url.QueryEscape(at(4)), 400, "from must be before to\n"},
		{"from=1000&to=1500", 404, "nothing recorded in that range\n"},
		// Hostile: the whole archive in one request.
		{"seconds=601", 400, "an export may span at most 10m0s (600 seconds); ask for several\n"},
		{"seconds=1e300", 400, "an export may span at most 10m0s (600 seconds); ask for several\n"},
		{"from=1&to=" + strconv.FormatInt(time.Now().Unix(), 10), 400, "an export may span at most 10m0s (600 seconds); ask for several\n"},
	} {
		resp, b := get(t, base+"/api/v1/feeds/cam/recordings/export?"+tc.q)
		if resp.StatusCode != tc.code || string(b) != tc.body {
			t.Errorf("export?%s: %d %q", tc.q, resp.StatusCode, b)
		}
	}
}

// TestExportNewParams records a feed that changes picture size: a new
// segment starts, and an export across it stops there and says so.
func TestExportNewParams(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	rr := start(t, Config{Dir: t.TempDir(), Segment: time.Minute}, f)
	base := testsupport.Serve(t, rr.Recorder.Register)
	f.publish(2)
	g, _ := testsrc.New(testsrc.Config{Width: 160, Height: 128, FPS: 30, Intra: 30})
	f.mu.Lock()
	f.g = g
	f.mu.Unlock()
	f.publish(2)
	rr.caughtUp(t, f)
	rr.stop()
	if len(rr.segs) != 2 {
		t.Fatalf("segments %v", rr.segs)
	}
	resp, p := export(t, base, "from="+strconv.FormatInt(rr.segs[0].Start.Unix()-1, 10)+"&to="+strconv.FormatInt(rr.segs[1].End().Unix()+1, 10))
	if resp.Header.Get("X-Camfeed-Export-Truncated") != "true" || math.Abs(p.Duration-rr.segs[0].Seconds) > 0.04 {
		t.Errorf("truncated %q, %.3f s", resp.Header.Get("X-Camfeed-Export-Truncated"), p.Duration)
	}
}

// TestRecordSkip: a recorder that falls behind the ring is skipped to a
// keyframe by the hub; it closes its segment at the gap and goes on.
func TestRecordSkip(t *testing.T) {
	f := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30})
	f.h = hub.New(hub.Config{MaxBytes: 64 << 10}) // about a GOP
	rr := start(t, Config{Dir: t.TempDir(), Segment: time.Minute}, f)
	f.publish(1)
	rr.caughtUp(t, f)
	f.mu.Lock() // hold the feed while the recorder is blocked
	rr.mu.Lock()
	f.mu.Unlock()
	f.publish(3) // the ring moves on past the recorder
	rr.mu.Unlock()
	f.publish(2)
	time.Sleep(300 * time.Millisecond)
	rr.stop()
	if f.h.Stats().Skips == 0 {
		t.Fatal("the recorder was not skipped")
	}
	if len(rr.segs) < 2 {
		t.Errorf("segments %v: no new segment after the gap", rr.segs)
	}
	checkSegments(t, rr.Recorder, 0)
}

// TestRegisterTogether puts every clip, snapshot and recording route of
// two feeds on one mux, as the server does: no pattern conflicts.
func TestRegisterTogether(t *testing.T) {
	a, b := hub.New(hub.Config{}), hub.New(hub.Config{})
	fs := feedsOf{"cam": a, "door": b}
	mux := route.Unguarded()
	clip.New(clip.Config{}, fs, nil).Register(mux)
	snapshot.New(snapshot.Config{}, door.Unlimited(fs), nil).Register(mux)
	New(Config{Dir: t.TempDir()}, "cam", a, nil).Register(mux)
	New(Config{Dir: t.TempDir()}, "door", b, nil).Register(mux)
	for _, p := range []string{
		"GET /cam/clip.mp4", "GET /door/snapshot.jpg", "POST /api/v1/feeds/cam/clips",
		"GET /api/v1/feeds/door/recordings", "GET /api/v1/feeds/door/recordings/export",
		"GET /api/v1/feeds/cam/recordings/20260102T150405.123Z_60.017s.mp4",
	} {
		method, path, _ := strings.Cut(p, " ")
		if _, pattern := mux.Handler(httptest.NewRequest(method, path, nil)); pattern == "" {
			t.Errorf("%s: no route", p)
		}
	}
	if err := New(Config{}, "cam", a, nil).Run(t.Context()); err == nil || err.Error() != "record: no recordings directory set" {
		t.Errorf("Run without a directory: %v", err)
	}
}

type feedsOf map[string]*hub.Hub

func (f feedsOf) Hub(name string) (*hub.Hub, bool) { h, ok := f[name]; return h, ok }
func (f feedsOf) Names() []string                  { return nil }
