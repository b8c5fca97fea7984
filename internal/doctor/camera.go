package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/camfeed/camfeed/internal/cameras"
	"github.com/camfeed/camfeed/internal/config"
)

// softwareCore1080p30 is the CPU a Pi 5 spends encoding 1080p30 with
// libx264 (rpicam-vid --codec libav --low-latency): about one Cortex-A76
// core, Raspberry Pi's own figure for software encoding on the Pi 5. The
// cost scales with the pixel rate.
const softwareCore1080p30 = 1.0

// checkModel names the board. On a Pi 5, which has no H.264 encoder, it
// says that camfeed encodes in software and what that costs, and it is a
// fault when a feed asks for the hardware encoder anyway.
func checkModel(ctx context.Context, m *machine) Result {
	model := m.model()
	if model == "" {
		return Result{Level: OK, Detail: "not a Raspberry Pi (no /proc/device-tree/model)"}
	}
	if !m.isPi() {
		return Result{Level: OK, Detail: model + ": not a Raspberry Pi"}
	}
	if cameras.HasHardwareH264(model) {
		return Result{Level: OK, Detail: model + ": hardware H.264 encoder"}
	}
	for _, name := range m.Config.FeedNames() {
		if why := asksHardware(m.Config.Feeds[name]); why != "" {
			return Result{Level: Fault,
				Detail: fmt.Sprintf("%s has no H.264 encoder, but feed %s asks for it (%s)", model, name, why),
				Fix:    "remove it: for the camera camfeed picks the software encoder by itself on a Pi 5; in an exec: command use libx264 instead of h264_v4l2m2m"}
		}
	}
	var parts []string
	total := 0.0
	for _, name := range m.cameraFeeds() {
		w, h, fps := picture(m.Config.Effective(name))
		cores := softwareCore1080p30 * float64(w*h) * fps / (1920 * 1080 * 30)
		total += cores
		parts = append(parts, fmt.Sprintf("feed %s (%dx%d at %g fps) about %.1f of its 4 cores", name, w, h, fps, cores))
	}
	detail := model + ": no H.264 encoder, so camfeed encodes in software (libx264), about one core for 1080p30"
	if len(parts) > 0 {
		detail += ": " + strings.Join(parts, ", ")
	}
	if total > 2 {
		return Result{Level: Warning, Detail: detail,
			Fix: "lower width, height or framerate: software encoding of more than two cores leaves too little for the viewers"}
	}
	return Result{Level: OK, Detail: detail}
}

// asksHardware says how a feed asks for the VideoCore encoder, or "".
func asksHardware(f *config.Feed) string {
	for i, a := range f.ExtraArgs {
		if a == "--codec=h264" || (a == "--codec" && i+1 < len(f.ExtraArgs) && f.ExtraArgs[i+1] == "h264") {
			return "extra_args --codec h264"
		}
	}
	if cmd, ok := strings.CutPrefix(f.Source, "exec:"); ok {
		switch {
		case strings.Contains(cmd, "h264_v4l2m2m"):
			return "h264_v4l2m2m in its command"
		case (strings.Contains(cmd, "rpicam-vid") || strings.Contains(cmd, "libcamera-vid")) && !strings.Contains(cmd, "libav"):
			return "rpicam-vid without --codec libav in its command"
		}
	}
	return ""
}

// cableFix is what to do when no camera is listed.
const cableFix = "power off and reseat the ribbon cable at both ends: contacts facing the connector's contacts, " +
	"latch pushed fully closed (a cable in backwards is the usual cause; a Pi 5 or Zero needs the narrow 22-pin cable), " +
	"then run rpicam-hello --list-cameras"

// checkCamera lists the Pi cameras as `camfeed cameras` does, and checks
// that the camera and mode each feed asks for are there.
func checkCamera(ctx context.Context, m *machine) Result {
	feeds := m.cameraFeeds()
	cams, err := m.cameras(ctx)
	if errors.Is(err, cameras.ErrNoTool) {
		switch {
		case len(feeds) > 0:
			return Result{Level: Fault, Detail: fmt.Sprintf("rpicam-apps is not installed, and feed %s uses the Pi camera", feeds[0]),
				Fix: "sudo apt install rpicam-apps"}
		case m.isPi():
			return Result{Level: Warning, Detail: "rpicam-apps is not installed: camfeed serves its test pattern instead of the camera",
				Fix: "sudo apt install rpicam-apps"}
		}
		return Result{Level: OK, Detail: "rpicam-apps is not installed; no feed uses the Pi camera"}
	}
	if len(cams) == 0 {
		detail := "rpicam-hello --list-cameras lists no camera"
		if err != nil && !errors.Is(err, cameras.ErrNoCameras) {
			detail += " (" + err.Error() + ")"
		}
		if len(feeds) == 0 {
			return Result{Level: Warning, Detail: detail + "; no feed uses it", Fix: cableFix}
		}
		return Result{Level: Fault, Detail: detail + fmt.Sprintf(", and feed %s uses it", feeds[0]), Fix: cableFix}
	}
	var found []string
	for _, c := range cams {
		found = append(found, describeCamera(c))
	}
	detail := strings.Join(found, "; ")
	for _, name := range feeds {
		f := m.Config.Effective(name)
		if f.Camera >= len(cams) {
			return Result{Level: Fault, Detail: fmt.Sprintf("feed %s uses camera %d, but only %d found: %s", name, f.Camera, len(cams), detail),
				Fix: fmt.Sprintf("set feeds.%s.camera to one listed (0 to %d), or connect the missing camera", name, len(cams)-1)}
		}
		if f.Mode != "" && !slices.ContainsFunc(cams[f.Camera].Modes, func(md cameras.Mode) bool { return md.Spec() == f.Mode }) {
			return Result{Level: Warning, Detail: fmt.Sprintf("feed %s asks for mode %s, which camera %d does not list: %s", name, f.Mode, f.Camera, detail),
				Fix: "use a mode from camfeed cameras (W:H:bit-depth:packing), or remove mode: to let libcamera choose"}
		}
	}
	return Result{Level: OK, Detail: detail}
}

func describeCamera(c cameras.Camera) string {
	s := fmt.Sprintf("camera %d: %s", c.Index, c.Sensor)
	if c.Model != "" {
		s += " (" + c.Model + ")"
	}
	var modes []string
	for _, md := range c.Modes {
		ms := fmt.Sprintf("%dx%d", md.Width, md.Height)
		if md.MaxFPS > 0 {
			ms += fmt.Sprintf(" %.0f fps", md.MaxFPS)
		}
		modes = append(modes, ms)
	}
	if len(modes) > 0 {
		s += ", modes " + strings.Join(slices.Compact(modes), ", ")
	}
	return s
}

// checkCameraStack looks for the legacy camera stack in config.txt:
// start_x=1 loads the old firmware camera driver, which hides the camera
// from libcamera (and so from rpicam-apps); camera_auto_detect=0 without
// a sensor overlay leaves the camera undetected.
func checkCameraStack(ctx context.Context, m *machine) Result {
	var path string
	var text []byte
	// Where the firmware's config.txt is: Bookworm and later, then older.
	for _, p := range []string{"/boot/firmware/config.txt", "/boot/config.txt"} {
		b, err := os.ReadFile(m.path(p))
		if err == nil {
			path, text = p, b
			break
		}
	}
	if path == "" {
		return Result{Level: OK, Detail: "no config.txt in /boot/firmware or /boot: not a Raspberry Pi, or /boot is not mounted"}
	}
	bc := ParseBootConfig(string(text))
	reboot := fmt.Sprintf(" in %s and reboot", path)
	switch {
	case bc.Values["start_x"] == "1":
		return Result{Level: Fault, Detail: fmt.Sprintf("the legacy camera stack is on (start_x=1 in %s): it hides the camera from libcamera and rpicam-apps", path),
			Fix: "delete the start_x=1 line (or sudo raspi-config, Interface Options, Legacy Camera, No), set camera_auto_detect=1" + reboot}
	case len(bc.Sensors) > 0:
		return Result{Level: OK, Detail: fmt.Sprintf("libcamera stack, camera set by hand: dtoverlay=%s in %s", strings.Join(bc.Sensors, ", "), path)}
	case bc.Values["camera_auto_detect"] == "1":
		return Result{Level: OK, Detail: "libcamera stack, camera_auto_detect=1 in " + path}
	case bc.Values["camera_auto_detect"] == "0":
		return Result{Level: Fault, Detail: fmt.Sprintf("camera detection is off (camera_auto_detect=0 in %s) and no camera overlay is set: libcamera finds no camera", path),
			Fix: "set camera_auto_detect=1 (or add the sensor's overlay, such as dtoverlay=imx708)" + reboot}
	}
	return Result{Level: Warning, Detail: fmt.Sprintf("neither camera_auto_detect=1 nor a camera overlay in %s: the firmware may not detect the camera", path),
		Fix: "add camera_auto_detect=1" + reboot}
}
