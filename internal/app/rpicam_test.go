package app

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestFakeRPiCam runs the rpicam source against a fake rpicam-vid on PATH:
// the exact arguments, the plain-words error for a busy camera, and the
// restart that then gets video.
func TestFakeRPiCam(t *testing.T) {
	dir := testsupport.FakeRPiCam(t, testStream(t, 60, nil))
	t.Setenv("FAKE_RPICAM_FIRST", "busy")
	ta := startApp(t, func(c *config.Config) {
		f := c.Feeds["cam"]
		f.Source = "auto" // rpicam-vid is on PATH, so auto picks the camera
		f.Width, f.Height, f.Framerate, f.Bitrate, f.Intra = 1280, 720, 30, 2_000_000, 30
		f.Profile, f.Level, f.HFlip, f.Rotation = "high", "4.1", true, 180
		f.ExtraArgs = []string{"--denoise", "cdn_off"}
	})
	ta.waitFrames(t, "cam", 30)
	st := ta.feeds["cam"].Status()
	if st.Restarts != 1 || !strings.Contains(st.LastError, "the camera is in use by another program") {
		t.Errorf("restarts %d, last error %q", st.Restarts, st.LastError)
	}
	if !strings.Contains(st.Source, "rpicam") {
		t.Errorf("source %q", st.Source)
	}
	lines := testsupport.FakeRPiCamRuns(t, dir)
	want := "--nopreview --timeout 0 --inline --flush --codec h264 --camera 0 --width 1280 --height 720 --framerate 30 --bitrate 2000000 --intra 30 --profile high --level 4.1 --hflip --rotation 180 --save-pts /dev/fd/3 --denoise cdn_off -o -"
	if len(lines) < 2 || lines[0] != want || lines[1] != want {
		t.Errorf("rpicam-vid args:\n%s\nwant twice:\n%s", strings.Join(lines, "\n"), want)
	}
	if !strings.Contains(ta.logs.String(), "Failed to acquire camera") {
		t.Error("the camera's stderr was not logged")
	}
	// The stream it gives is served.
	viewer, _ := httpGet(t, ta.url("/stream.h264"), testsupport.Patience)
	var rec recorder
	readUnits(t, viewer.Body, 1, &rec)
	if units := rec.units(); len(units) == 0 || !units[0].Keyframe {
		t.Errorf("viewer got %d units", len(units))
	}
}

// TestCameraFramesDropped runs camfeed with the fake rpicam-vid on PATH.
// The fake leaves frames out of its sensor timestamps; the status and the
// metrics count them, over a restart of the camera (the first run ends
// after its stream), and the drops are logged in words, at most once a
// minute. Where there are no timestamps (an rpicam-vid without
// --save-pts, the libav encoder), nothing is shown.
func TestCameraFramesDropped(t *testing.T) {
	const dropped = 3
	for _, tc := range []struct {
		name  string
		env   []string // name=value
		extra []string
		want  int // dropped frames shown; -1: none shown, no --save-pts
	}{
		{"drops over a restart", []string{"FAKE_RPICAM_FIRST=exit"}, nil, 2 * dropped},
		{"an old rpicam-vid", []string{"FAKE_RPICAM_OLD=1"}, nil, -1},
		{"the libav encoder", nil, []string{"--codec", "libav"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testsupport.FakeRPiCam(t, testStream(t, 60, nil))
			t.Setenv("FAKE_RPICAM_DROP", strconv.Itoa(dropped))
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			ta := startApp(t, func(c *config.Config) {
				f := c.Feeds["cam"]
				f.Source, f.Framerate, f.ExtraArgs = "rpicam", 30, tc.extra
			})
			ta.waitFrames(t, "cam", 30)
			get := func(path string) string {
				resp, _ := httpGet(t, ta.url(path), testsupport.Patience)
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			status := regexp.MustCompile(fmt.Sprintf(`"camera_frames_dropped": %d\b`, tc.want))
			metric := fmt.Sprintf("camfeed_camera_frames_dropped_total{feed=\"cam\"} %d\n", tc.want)
			if tc.want < 0 {
				if s, m := get("/api/v1/status"), get("/metrics"); strings.Contains(s, "camera_frames_dropped") || strings.Contains(m, "camfeed_camera_frames_dropped") {
					t.Errorf("frames dropped shown without timestamps:\n%s", s)
				}
				for _, l := range testsupport.FakeRPiCamRuns(t, dir) {
					if strings.Contains(l, "--save-pts") {
						t.Errorf("rpicam-vid given --save-pts: %s", l)
					}
				}
				if strings.Contains(ta.logs.String(), "camera dropped") {
					t.Errorf("drops logged:\n%s", ta.logs.String())
				}
				return
			}
			testsupport.Eventually(t, "the drops of both runs in the status", func() bool {
				return status.MatchString(get("/api/v1/status"))
			})
			if m := get("/metrics"); !strings.Contains(m, metric) {
				t.Errorf("%q not in the metrics", metric)
			}
			if runs := testsupport.FakeRPiCamRuns(t, dir); len(runs) != 2 {
				t.Errorf("%d runs of rpicam-vid, want 2", len(runs))
			}
			logs := ta.logs.String()
			want := fmt.Sprintf("camera dropped %d frames in the last minute (sensor timestamps): the Pi is short of CPU, memory bandwidth or power, or the mode's frame rate is too high", dropped)
			if n := strings.Count(logs, "camera dropped"); n != 1 || !strings.Contains(logs, want) {
				t.Errorf("drops logged %d times, want once as %q:\n%s", n, want, logs)
			}
		})
	}
}
