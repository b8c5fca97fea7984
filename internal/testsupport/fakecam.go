package testsupport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRPiCam is a stand-in for rpicam-vid: it records its arguments,
// answers --list-cameras and --help like the real one, and streams H.264
// to stdout. Knobs, in the environment:
//   - FAKE_RPICAM_FIRST: what the first run does instead: "busy" fails the
//     way a busy camera does, "exit" ends after the stream;
//   - FAKE_RPICAM_EXIT=1: every run ends after the stream;
//   - FAKE_RPICAM_DROP=N: the timestamps written to --save-pts (60 frames
//     at 30 fps, as rpicam-vid writes them) leave out N frames after the
//     20th, as when the camera drops them;
//   - FAKE_RPICAM_OLD=1: an rpicam-vid without --save-pts;
//   - FAKE_RPICAM_LIBAV=1: one that lists --save-pts but refuses it, as
//     its libav encoder does;
//   - FAKE_RPICAM_HOLD=1: a process outside the camera's group keeps the
//     --save-pts pipe open for 5 s after the camera exits.
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
--help)
	echo "Valid options are:"
	echo "  -h [ --help ] [=arg(=1)] (=0)         Print this help message"
	[ -n "$FAKE_RPICAM_OLD" ] || echo "  --save-pts arg                        Save a timestamp file with this name"
	exit 0 ;;
esac
pts=
prev=
for a in "$@"; do
	[ "$prev" = --save-pts ] && pts=$a
	prev=$a
done
if [ -n "$pts" ] && [ -n "$FAKE_RPICAM_OLD" ]; then
	echo "unrecognised option '--save-pts'" >&2
	exit 255
fi
if [ -n "$pts" ] && [ -n "$FAKE_RPICAM_LIBAV" ]; then
	echo "ERROR: The libav encoder does not currently support the circular, segment, save_pts, split, or pause command line options with non-elementary streams!" >&2
	echo "ERROR: *** libav: Incompatible options selected. ***" >&2
	exit 255
fi
n=$(cat "$FAKE_RPICAM_DIR/runs" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$FAKE_RPICAM_DIR/runs"
if [ "$n" = 1 ] && [ "$FAKE_RPICAM_FIRST" = busy ]; then
	echo "[0:00:01.234] ERROR RPI pipeline_base.cpp:123 Failed to acquire camera: Device or resource busy" >&2
	echo "ERROR: *** failed to acquire camera /base/soc/i2c0mux/i2c@1/imx708@1a ***" >&2
	exit 255
fi
if [ -n "$pts" ]; then
	drop=$((20 + ${FAKE_RPICAM_DROP:-0}))
	{
		echo "# timecode format v2"
		i=0
		while [ $i -lt 60 ]; do
			if [ $i -lt 20 ] || [ $i -ge $drop ]; then
				us=$((i * 1000000 / 30))
				printf '%d.%03d\n' $((us / 1000)) $((us % 1000))
			fi
			i=$((i + 1))
		done
	} > "$pts"
fi
cat "$FAKE_RPICAM_STREAM"
if [ -n "$FAKE_RPICAM_HOLD" ] && [ -n "$pts" ]; then
	setsid sleep 5 3>"$pts" </dev/null >/dev/null 2>&1 &
fi
if [ "$n" = 1 ] && [ "$FAKE_RPICAM_FIRST" = exit ] || [ -n "$FAKE_RPICAM_EXIT" ]; then
	exit 0
fi
exec sleep 600
`

// FakeRPiCam puts the fake rpicam-vid first on PATH, streaming the
// H.264 file stream, and returns its directory, where it notes its
// arguments ("args", a line a call) and its runs ("runs").
func FakeRPiCam(t *testing.T, stream string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rpicam-vid"), []byte(fakeRPiCam), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("FAKE_RPICAM_DIR", dir)
	t.Setenv("FAKE_RPICAM_STREAM", stream)
	return dir
}

// FakeRPiCamRuns returns the arguments of each run of the fake in dir
// (not its --help).
func FakeRPiCamRuns(t *testing.T, dir string) []string {
	t.Helper()
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(args)), "\n") {
		if l != "--help" {
			out = append(out, l)
		}
	}
	return out
}
