package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// fakeRPiCam is a stand-in for rpicam-vid: it records its arguments,
// answers --list-cameras like the real one, fails the first run the way a
// busy camera does, and then streams H.264 to stdout.
const fakeRPiCam = `#!/bin/sh
echo "$*" >> "$FAKE_RPICAM_DIR/args"
case "$*" in
*--list-cameras*)
	cat <<'EOF'
Available cameras
-----------------
0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)
    Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]
                             2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]
                             4608x2592 [14.35 fps - (0, 0)/4608x2592 crop]
EOF
	exit 0 ;;
esac
n=$(cat "$FAKE_RPICAM_DIR/runs" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$FAKE_RPICAM_DIR/runs"
if [ "$n" = 1 ]; then
	echo "[0:00:01.234] ERROR RPI pipeline_base.cpp:123 Failed to acquire camera: Device or resource busy" >&2
	echo "ERROR: *** failed to acquire camera /base/soc/i2c0mux/i2c@1/imx708@1a ***" >&2
	exit 255
fi
cat "$FAKE_RPICAM_STREAM"
exec sleep 600
`

// TestFakeRPiCam runs the rpicam source against a fake rpicam-vid on PATH:
// the exact arguments, the plain-words error for a busy camera, and the
// restart that then gets video.
func TestFakeRPiCam(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rpicam-vid"), []byte(fakeRPiCam), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("FAKE_RPICAM_DIR", dir)
	t.Setenv("FAKE_RPICAM_STREAM", testStream(t, 60, nil))
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
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	lines := strings.Split(strings.TrimSpace(string(args)), "\n")
	want := "--nopreview --timeout 0 --inline --flush --codec h264 --camera 0 --width 1280 --height 720 --framerate 30 --bitrate 2000000 --intra 30 --profile high --level 4.1 --hflip --rotation 180 --denoise cdn_off -o -"
	if len(lines) < 2 || lines[0] != want || lines[1] != want {
		t.Errorf("rpicam-vid args:\n%s\nwant twice:\n%s", args, want)
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
