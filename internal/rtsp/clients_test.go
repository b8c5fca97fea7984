package rtsp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestFFmpeg has ffprobe and ffmpeg read each transport: the stream must
// probe at the pattern's size, and decode with nothing on stderr at
// -v error (no concealment, no missing references).
//
// ffmpeg decodes with -fps_mode passthrough -enc_time_base -1, which keeps
// the 90 kHz timestamps. By default ffmpeg rescales them to 1/fps for its
// output, where the catch-up frames at join (1 ms apart by design, see
// clock) and arrival jitter of a few milliseconds round onto one tick and
// the null muxer reports "non monotonically increasing dts". That is
// about ffmpeg's output clock, not the stream: the decoder is silent.
func TestFFmpeg(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	testsupport.NeedTool(t, "ffmpeg")
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)

	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			out, err := testsupport.Run(t, time.Minute, "ffprobe", "-v", "error", "-rtsp_transport", transport,
				"-select_streams", "v", "-show_entries", "stream=codec_name,width,height", "-of", "json", url(s, "cam"))
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			var probe struct {
				Streams []struct {
					CodecName     string `json:"codec_name"`
					Width, Height int
				}
			}
			if err := json.Unmarshal([]byte(out), &probe); err != nil || len(probe.Streams) != 1 {
				t.Fatalf("ffprobe output %q: %v", out, err)
			}
			if st := probe.Streams[0]; st.CodecName != "h264" || st.Width != 320 || st.Height != 240 {
				t.Errorf("ffprobe: got %+v, want h264 320x240", st)
			}

			out, err = testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport,
				"-i", url(s, "cam"), "-frames:v", "45", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-")
			if err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			if strings.TrimSpace(out) != "" {
				t.Errorf("ffmpeg decoded with errors:\n%s", out)
			}
		})
	}
	// ffmpeg's TEARDOWN is handled by the server after ffmpeg exits; on a
	// busy machine that can take a moment, and a UDP session whose
	// TEARDOWN was lost ends at the server's read timeout (10 s) instead.
	deadline := time.Now().Add(3 * testsupport.Patience)
	for len(s.Sessions("cam")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sessions after the clients left: %+v", s.Sessions("cam"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGStreamer plays each transport with rtspsrc ! rtph264depay !
// h264parse ! avdec_h264: the pipeline must reach PLAYING and decode 30
// buffers (identity eos-after ends it after the 30th) without an error.
func TestGStreamer(t *testing.T) {
	testsupport.NeedTool(t, "gst-launch-1.0")
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			out, err := testsupport.Run(t, 30*time.Second, "gst-launch-1.0", "rtspsrc", "location="+url(s, "cam"), "protocols="+proto, "latency=0",
				"!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "identity", "eos-after=30", "!", "fakesink")
			if err != nil {
				t.Fatalf("gst-launch: %v\n%s", err, out)
			}
			for _, want := range []string{"Setting pipeline to PLAYING", "Got EOS from element"} {
				if !strings.Contains(out, want) {
					t.Errorf("gst-launch output lacks %q:\n%s", want, out)
				}
			}
			// Errors while the pipeline goes from EOS to NULL (its PAUSE
			// and TEARDOWN, e.g. "Could not send message" on a loaded
			// machine) are logged: decoding is what is checked here.
			played, teardown, _ := strings.Cut(out, "Got EOS from element")
			if strings.Contains(played, "ERROR") || strings.Contains(played, "WARNING") {
				t.Errorf("gst-launch reported a problem:\n%s", out)
			} else if strings.Contains(teardown, "ERROR") {
				t.Logf("gst-launch reported a problem after EOS, while tearing down:\n%s", teardown)
			}
		})
	}
}
