package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// source feeds the test pattern into a hub.
type source struct {
	h   *hub.Hub
	g   *testsrc.Generator
	p   *h264.Parser
	fps int
	mu  sync.Mutex
}

func newSource(t testing.TB, w, h, fps, intra int) *source {
	g, err := testsrc.New(testsrc.Config{Width: w, Height: h, FPS: fps, Intra: intra})
	if err != nil {
		t.Fatal(err)
	}
	return &source{h: hub.New(hub.Config{Window: 10 * time.Second}), g: g, p: h264.NewParser(h264.ParserConfig{}), fps: fps}
}

// fill publishes secs of history ending now.
func (s *source) fill(secs float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int(secs * float64(s.fps))
	end := time.Now()
	for i := n; i > 0; i-- {
		t := end.Add(-time.Duration(i) * time.Second / time.Duration(s.fps))
		nalus, _ := s.g.Next(t)
		s.p.WriteAU(nalus, t.Add(3*time.Millisecond), s.h.Publish)
	}
}

func (s *source) run(t testing.TB) {
	testfeed.Live(t, s.g, func(nalus [][]byte, now time.Time) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.p.WriteAU(nalus, now, s.h.Publish)
	})
}

func get(t testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// timeCode decodes a JPEG and reads the test pattern's pixel time code.
func timeCode(t testing.TB, b []byte, w, h int) time.Time {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if sz := img.Bounds().Size(); sz.X != w || sz.Y != h {
		t.Fatalf("picture is %v, want %dx%d", sz, w, h)
	}
	ycc, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("JPEG decodes to %T", img)
	}
	y := make([]byte, w*h)
	for row := range h {
		copy(y[row*w:], ycc.Y[row*ycc.YStride:row*ycc.YStride+w])
	}
	tc, err := testsrc.ReadTimeCode(y, w, h)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// countDecodes wraps the server's decoder with a counter.
func countDecodes(srv *Server) *atomic.Int32 {
	var n atomic.Int32
	dec := srv.decode
	srv.decode = func(ctx context.Context, ffmpeg string, units []*h264.AccessUnit) ([]byte, error) {
		n.Add(1)
		return dec(ctx, ffmpeg, units)
	}
	return &n
}

// TestSnapshotIsNewest takes a snapshot in the middle of a GOP: it must be
// the newest picture (decoded through the units after the keyframe), not
// the keyframe, at the feed's size.
func TestSnapshotIsNewest(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	for _, size := range []struct{ w, h int }{{640, 480}, {1280, 720}, {1920, 1080}} {
		src := newSource(t, size.w, size.h, 30, 60)
		src.fill(3.5) // newest keyframe 1.5 s back
		url := testsupport.Serve(t, New(Config{}, door.Unlimited(testfeed.Feeds{"cam": src.h}), nil).Register)
		begin := time.Now()
		resp, b := get(t, url+"/cam/snapshot.jpg")
		took := time.Since(begin)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		_, newest := src.h.Latest()
		tc := timeCode(t, b, size.w, size.h)
		frame := time.Second / time.Duration(src.fps)
		if d := newest.Captured.Sub(tc); d < 0 || d > frame {
			t.Errorf("%dx%d: picture's time code is %v older than the newest frame's", size.w, size.h, d)
		}
		t.Logf("%dx%d: %d frames decoded in %v, %d bytes, time code %v behind the newest frame",
			size.w, size.h, len(src.h.Since(newest.Received.Add(-time.Second))), took, len(b), newest.Captured.Sub(tc))
	}
}

// TestSnapshotLive measures a snapshot of a live feed: how far its picture
// is behind the newest frame at the request and at the response.
func TestSnapshotLive(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	src := newSource(t, 640, 480, 30, 30)
	src.run(t)
	time.Sleep(1500 * time.Millisecond)
	srv := New(Config{CacheFor: time.Millisecond}, door.Unlimited(testfeed.Feeds{"cam": src.h}), nil)
	url := testsupport.Serve(t, srv.Register)
	frame := time.Second / 30
	for i := range 3 {
		_, atRequest := src.h.Latest()
		begin := time.Now()
		resp, b := get(t, url+"/cam/snapshot.jpg")
		took := time.Since(begin)
		if resp.StatusCode != 200 {
			t.Fatalf("%d: %s", resp.StatusCode, b)
		}
		_, atResponse := src.h.Latest()
		tc := timeCode(t, b, 640, 480)
		if d := atRequest.Captured.Sub(tc); d > frame {
			t.Errorf("picture is %v older than the newest frame when asked", d)
		}
		t.Logf("snapshot %d: took %v; picture %v after the newest frame at the request, %v behind the newest at the response",
			i, took, tc.Sub(atRequest.Captured).Round(time.Millisecond), atResponse.Captured.Sub(tc).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
	}
}

func TestSnapshotCache(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	src := newSource(t, 320, 240, 30, 30)
	src.fill(1.2)
	srv := New(Config{CacheFor: time.Hour}, door.Unlimited(testfeed.Feeds{"cam": src.h}), nil)
	decodes := countDecodes(srv)
	url := testsupport.Serve(t, srv.Register)
	var wg sync.WaitGroup
	etags := make([]string, 10)
	for i := range etags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := get(t, url+"/cam/snapshot.jpg")
			etags[i] = resp.Header.Get("ETag")
		}()
	}
	wg.Wait()
	if n := decodes.Load(); n != 1 {
		t.Errorf("10 requests at once: %d decodes, want 1", n)
	}
	for _, e := range etags {
		if e != etags[0] || e == "" {
			t.Fatalf("ETags %q", etags)
		}
	}
	if resp, _ := get(t, url+"/cam/snapshot.jpg", "If-None-Match", etags[0]); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	// A still feed is never decoded again; a new frame after CacheFor is.
	srv.cfg.CacheFor = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	get(t, url+"/cam/snapshot.jpg")
	if n := decodes.Load(); n != 1 {
		t.Errorf("still feed: %d decodes", n)
	}
	src.fill(0.1)
	resp, _ := get(t, url+"/cam/snapshot.jpg")
	if n := decodes.Load(); n != 2 || resp.Header.Get("ETag") == etags[0] {
		t.Errorf("new frame: %d decodes, ETag %q", n, resp.Header.Get("ETag"))
	}
}

func TestSnapshotNoFFmpeg(t *testing.T) {
	src := newSource(t, 320, 240, 30, 30)
	src.fill(0.5)
	url := testsupport.Serve(t, New(Config{FFmpeg: "/nonexistent/ffmpeg"}, door.Unlimited(testfeed.Feeds{"cam": src.h}), nil).Register)
	resp, b := get(t, url+"/cam/snapshot.jpg")
	want := "snapshot.jpg needs ffmpeg: install ffmpeg (sudo apt install ffmpeg), or ask for snapshot.jpg?keyframe=1, an MP4 of the latest keyframe\n"
	if resp.StatusCode != http.StatusNotImplemented || string(b) != want {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
	// The keyframe MP4 needs no ffmpeg.
	if resp, _ := get(t, url+"/cam/snapshot.jpg?keyframe=1"); resp.StatusCode != 200 {
		t.Errorf("keyframe=1 without ffmpeg: %d", resp.StatusCode)
	}
}

func TestSnapshotErrors(t *testing.T) {
	empty := newSource(t, 320, 240, 30, 30)
	url := testsupport.Serve(t, New(Config{}, door.Unlimited(testfeed.Feeds{"cam": empty.h}), nil).Register)
	for _, tc := range []struct {
		path string
		code int
	}{{"/nope/snapshot.jpg", 404}, {"/cam/snapshot.jpg", 503}, {"/cam/snapshot.jpg?keyframe=1", 503}} {
		if resp, _ := get(t, url+tc.path); resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
	}
}

func TestKeyframeMP4(t *testing.T) {
	ffprobe := testsupport.NeedTool(t, "ffprobe")
	src := newSource(t, 640, 480, 30, 30)
	src.fill(1.5)
	url := testsupport.Serve(t, New(Config{}, door.Unlimited(testfeed.Feeds{"cam": src.h}), nil).Register)
	resp, b := get(t, url+"/cam/snapshot.jpg?keyframe=1")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	path := t.TempDir() + "/key.mp4"
	os.WriteFile(path, b, 0o644)
	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-print_format", "json", "-show_streams", "-show_packets", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Streams []struct {
			Width, Height int
			NbReadFrames  string `json:"nb_read_frames"`
		}
		Packets []struct{ Flags string }
	}
	json.Unmarshal(out, &v)
	if len(v.Streams) != 1 || v.Streams[0].Width != 640 || v.Streams[0].Height != 480 || v.Streams[0].NbReadFrames != "1" ||
		len(v.Packets) != 1 || v.Packets[0].Flags[0] != 'K' {
		t.Errorf("ffprobe: %s", out)
	}
	// Its picture is the newest keyframe's.
	key, _ := src.h.Latest()
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	jpg, err := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "2", "pipe:1").Output()
	if err != nil {
		t.Fatal(err)
	}
	if tc := timeCode(t, jpg, 640, 480); key.Captured.Sub(tc).Abs() > time.Millisecond {
		t.Errorf("keyframe MP4 shows %v, newest keyframe %v", tc, key.Captured)
	}
}
