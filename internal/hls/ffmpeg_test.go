package hls

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// accessLog records the status of every request, as a server's access
// log would.
type accessLog struct {
	mu    sync.Mutex
	lines []string
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (l *accessLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		l.lines = append(l.lines, fmt.Sprintf("%d %s", sw.code, r.URL.Path))
		l.mu.Unlock()
	})
}

func (l *accessLog) failed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if !strings.HasPrefix(s, "200 ") {
			out = append(out, s)
		}
	}
	return out
}

// TestFFmpegFromStart: ffmpeg joined a feed's LL-HLS as the muxer
// started; the first playlists list seven gap segments (for iOS, which
// wants a full playlist at once), ffmpeg does not know EXT-X-GAP, asked
// for gap.mp4 and got 404 ("Failed to open segment"). Nothing a playlist
// lists may fail. (The stream's timing is TestPartDurationsSteady's: the
// test pattern here runs in real time on a machine that may be too busy
// to keep its frame rate, so its frames are not regular to begin with.)
func TestFFmpegFromStart(t *testing.T) {
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	feed := testfeed.Start(t, testsrc.Config{Width: 320, Height: 240}, hub.Config{})
	d := door.Unlimited(testfeed.Feeds{"cam": feed.Hub})
	s := New(Config{}, d, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var log accessLog
	mux := route.Unguarded()
	s.Register(mux)
	base := testsupport.ServeHandler(t, log.wrap(mux)).URL

	out, err := testsupport.Run(t, 4*testsupport.Patience, ffmpeg, "-hide_banner", "-nostdin",
		"-i", base+"/cam/index.m3u8", "-t", "4", "-f", "null", "-")
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	for _, bad := range []string{"Failed to open segment", "404", "Error"} {
		if strings.Contains(out, bad) {
			t.Errorf("ffmpeg says %q:\n%s", bad, out)
		}
	}
	if f := log.failed(); len(f) > 0 {
		t.Errorf("requests that failed: %v", f)
	}
	if !strings.Contains(out, "frame=") {
		t.Errorf("ffmpeg decoded nothing:\n%s", out)
	}
}
