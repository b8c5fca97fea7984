package hls

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

func TestRewriteURIs(t *testing.T) {
	in := "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.42c01e\"\nab_video_stream.m3u8\n#EXT-X-MAP:URI=\"init.mp4\"\n"
	want := "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.42c01e\"\nhls/ab_video_stream.m3u8?session=x\n#EXT-X-MAP:URI=\"hls/init.mp4?session=x\"\n"
	if got := string(rewriteURIs([]byte(in), "hls/", "session=x")); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	in = "#EXT-X-PART:DURATION=0.2,URI=\"p1.mp4\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p2.mp4?a=1\"\nseg.mp4\nseg2.mp4?session=x\n"
	want = "#EXT-X-PART:DURATION=0.2,URI=\"p1.mp4?session=x\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p2.mp4?a=1&session=x\"\nseg.mp4?session=x\nseg2.mp4?session=x\n"
	if got := string(rewriteURIs([]byte(in), "", "session=x")); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestPlaylists follows the playlists down to a part, and checks that
// idle muxers stop.
func TestPlaylists(t *testing.T) {
	feed := testfeed.Start(t, testsrc.Config{Width: 320, Height: 240}, hub.Config{})
	d := door.Unlimited(testfeed.Feeds{"cam": feed.Hub})
	s := New(Config{IdleTimeout: 2 * time.Second}, d, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := testsupport.Serve(t, s.Register)

	if code, _ := fetch(t, base+"/nope/index.m3u8"); code != http.StatusNotFound {
		t.Errorf("unknown feed: %d", code)
	}
	var mv string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := fetch(t, base+"/cam/index.m3u8")
		if code == http.StatusOK && strings.Contains(body, "#EXT-X-STREAM-INF") {
			mv = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no multivariant playlist: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var media string
	for _, l := range strings.Split(mv, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			media = l
		}
	}
	if !strings.HasPrefix(media, "hls/") || !strings.Contains(media, "?session=") {
		t.Fatalf("media playlist %q is not under hls/ with a session", media)
	}
	if n := d.Count("cam")[door.HLS]; n < 1 {
		t.Errorf("HLS sessions in the door: %d, want at least 1", n)
	}
	code, pl := fetch(t, base+"/cam/"+media)
	if code != http.StatusOK || !strings.Contains(pl, "#EXT-X-PART:") || !strings.Contains(pl, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES") {
		t.Fatalf("media playlist: %d\n%s", code, pl)
	}
	var part string
	for _, l := range strings.Split(pl, "\n") {
		if i := strings.Index(l, `URI="`); strings.HasPrefix(l, "#EXT-X-PART:") && i >= 0 {
			part = strings.SplitN(l[i+5:], `"`, 2)[0]
		}
	}
	if !strings.Contains(part, "session=") {
		t.Errorf("part URI %q carries no session", part)
	}
	if code, body := fetch(t, base+"/cam/hls/"+part); code != http.StatusOK || !strings.Contains(body, "moof") {
		t.Errorf("part %s: %d, %d bytes", part, code, len(body))
	}
	var bytes uint64
	for _, in := range d.Sessions("cam") {
		bytes += in.Bytes
	}
	if bytes == 0 {
		t.Error("the session's bytes were not counted")
	}
	if code, _ := fetch(t, base+"/cam/hls/nope.mp4"); code != http.StatusNotFound {
		t.Errorf("unknown file: %d", code)
	}
	// Nobody asks for 2 s: the muxer stops.
	deadline = time.Now().Add(6 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.muxers)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle muxer did not stop")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
