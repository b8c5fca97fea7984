package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/camfeed/camfeed/internal/cameras"
)

// RPiCam settings; zero values leave rpicam-vid's own defaults.
type RPiCam struct {
	Camera    int
	Mode      string // W:H:bit-depth:packing
	Width     int
	Height    int
	Framerate float64
	Bitrate   int
	Intra     int
	Profile   string // baseline, main, high
	Level     string // 4, 4.1, 4.2
	HFlip     bool
	VFlip     bool
	Rotation  int
	ExtraArgs []string
	// Software selects the libav (libx264) encoder, for the Raspberry Pi 5,
	// which has no hardware H.264 encoder.
	Software bool
	Log      *slog.Logger
	// Drops, if set, counts the frames the camera drops, from rpicam-vid's
	// sensor timestamps (--save-pts; see camdrops.go). The app keeps one
	// per feed, so the count outlives this source.
	Drops *FrameDrops

	bin  string
	seen stderrMemory
	// ptsBin is the tool whose --help was read, and ptsKnown whether it
	// has --save-pts (knowsPTS; Run is never called concurrently).
	ptsBin   string
	ptsKnown bool
}

// ErrNoCameraTool is returned when neither rpicam-vid nor libcamera-vid is
// on PATH.
var ErrNoCameraTool = errors.New("neither rpicam-vid nor libcamera-vid is installed (sudo apt install rpicam-apps)")

// FindCameraTool returns the path of rpicam-vid, or of libcamera-vid on
// older Raspberry Pi OS releases.
func FindCameraTool() (string, error) {
	for _, name := range []string{"rpicam-vid", "libcamera-vid"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoCameraTool
}

// IsPi5 reports whether the board is a Raspberry Pi without an H.264
// encoder: a Pi 5, a Pi 500 or a Compute Module 5 (cameras.HasHardwareH264
// reads the same model string for camfeed doctor).
func IsPi5(modelFile string) bool {
	b, err := os.ReadFile(modelFile)
	model := strings.TrimRight(string(b), "\x00\n")
	return err == nil && strings.HasPrefix(model, "Raspberry Pi ") && !cameras.HasHardwareH264(model)
}

func (r *RPiCam) String() string { return fmt.Sprintf("rpicam (camera %d)", r.Camera) }

// Args returns the rpicam-vid arguments. Documented in rpicam-apps'
// "rpicam-vid" and "video options" pages:
//   - --codec h264 --inline: SPS/PPS before every IDR, so viewers can join;
//   - --nopreview --timeout 0: headless, run forever;
//   - --flush: write each frame to stdout at once (latency);
//   - -o -: stdout.
//
// On a Pi 5 the libav path is used: --codec libav --libav-format h264
// --libav-video-codec libx264 --low-latency (no B-frames or lookahead).
func (r *RPiCam) Args() []string { return r.args("") }

// args adds --save-pts ptsFile when ptsFile is set, before extra_args.
func (r *RPiCam) args(ptsFile string) []string {
	a := []string{"--nopreview", "--timeout", "0", "--inline", "--flush"}
	if r.Software {
		a = append(a, "--codec", "libav", "--libav-format", "h264", "--libav-video-codec", "libx264", "--low-latency")
	} else {
		a = append(a, "--codec", "h264")
	}
	a = append(a, "--camera", strconv.Itoa(r.Camera))
	if r.Mode != "" {
		a = append(a, "--mode", r.Mode)
	}
	if r.Width > 0 && r.Height > 0 {
		a = append(a, "--width", strconv.Itoa(r.Width), "--height", strconv.Itoa(r.Height))
	}
	if r.Framerate > 0 {
		a = append(a, "--framerate", strconv.FormatFloat(r.Framerate, 'g', -1, 64))
	}
	if r.Bitrate > 0 {
		a = append(a, "--bitrate", strconv.Itoa(r.Bitrate))
	}
	if r.Intra > 0 {
		a = append(a, "--intra", strconv.Itoa(r.Intra))
	}
	if r.Profile != "" {
		a = append(a, "--profile", r.Profile)
	}
	if r.Level != "" {
		a = append(a, "--level", r.Level)
	}
	if r.HFlip {
		a = append(a, "--hflip")
	}
	if r.VFlip {
		a = append(a, "--vflip")
	}
	if r.Rotation != 0 {
		a = append(a, "--rotation", strconv.Itoa(r.Rotation))
	}
	if ptsFile != "" {
		a = append(a, "--save-pts", ptsFile)
	}
	a = append(a, r.ExtraArgs...)
	return append(a, "-o", "-")
}

// Run implements Source.
func (r *RPiCam) Run(ctx context.Context, sink Sink) error {
	bin := r.bin
	if bin == "" {
		var err error
		if bin, err = FindCameraTool(); err != nil {
			return err
		}
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	p := &process{name: bin, args: r.Args(), log: r.Log, explain: explainCamera, seen: &r.seen}
	if r.wantsPTS() && r.knowsPTS(ctx, bin) {
		return r.runWithPTS(ctx, p, sink)
	}
	return p.run(ctx, sink)
}

// explainCamera turns libcamera's log lines into what a person can act on.
func explainCamera(line string) string {
	l := strings.ToLower(line)
	switch {
	case strings.Contains(l, "no cameras available"):
		return "no camera found: check the ribbon cable (contacts facing the right way, latch closed) and run 'rpicam-hello --list-cameras'"
	case strings.Contains(l, "device or resource busy"), strings.Contains(l, "failed to acquire camera"), strings.Contains(l, "in use by another"):
		return "the camera is in use by another program (another rpicam-vid, motion, or a second camfeed): stop it and camfeed will retry"
	case strings.Contains(l, "invalid camera index"), strings.Contains(l, "camera index") && strings.Contains(l, "out of range"):
		return "no camera with that index: see 'camfeed cameras' for the list"
	case strings.Contains(l, "unable to open video codec"), strings.Contains(l, "failed to open") && strings.Contains(l, "encoder"):
		return "the H.264 encoder could not be opened: " + line
	case strings.Contains(l, "unrecognised option"), strings.Contains(l, "unrecognized option"):
		return "rpicam-vid does not know an option camfeed passed (check extra_args, or update rpicam-apps): " + line
	}
	return ""
}
