package doctor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/camfeed/camfeed/internal/cameras"
	"github.com/camfeed/camfeed/internal/systemd"
)

// checkVideoGroup checks that camfeed's user may open the camera: the
// installed service's user (or, with no service, whoever runs doctor) is
// in group video, through the unit's SupplementaryGroups, /etc/group, or
// its primary group.
func checkVideoGroup(ctx context.Context, m *machine) Result {
	groupText, err := os.ReadFile(m.path("/etc/group"))
	if err != nil {
		return Result{Level: OK, Detail: "no /etc/group: nothing to check"}
	}
	video, ok := parseGroups(string(groupText))["video"]
	if !ok {
		if m.isPi() {
			return Result{Level: Warning, Detail: "no video group in /etc/group: Raspberry Pi OS has one, and the camera devices belong to it",
				Fix: "sudo groupadd --system video, then reboot so that udev gives it the camera devices"}
		}
		return Result{Level: OK, Detail: "no video group on this system"}
	}
	who, service, unitPath := m.User, false, ""
	for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
		p := dir + "/" + systemd.DefaultName + ".service"
		if b, err := os.ReadFile(m.path(p)); err == nil {
			u := parseUnit(string(b))
			who, service, unitPath = cmpOr(u.user, "root"), true, p
			if slices.Contains(u.groups, "video") {
				return Result{Level: OK, Detail: fmt.Sprintf("the camfeed service runs as %s with group video (%s)", who, p)}
			}
			break
		}
	}
	if who == "" {
		return Result{Level: Warning, Detail: "cannot tell who runs camfeed: no camfeed service installed and no current user",
			Fix: "run camfeed doctor as the user that runs camfeed"}
	}
	if who == "root" {
		if service {
			return Result{Level: OK, Detail: fmt.Sprintf("the camfeed service (%s) runs as root, which may open the camera", unitPath)}
		}
		return Result{Level: OK, Detail: "root (no camfeed service installed) may open the camera"}
	}
	passwd, _ := os.ReadFile(m.path("/etc/passwd"))
	if slices.Contains(video.members, who) || (video.gid != "" && primaryGID(string(passwd), who) == video.gid) {
		if service {
			return Result{Level: OK, Detail: fmt.Sprintf("the camfeed service runs as %s, in group video", who)}
		}
		return Result{Level: OK, Detail: fmt.Sprintf("%s (no camfeed service installed) is in group video", who)}
	}
	if service {
		return Result{Level: Fault, Detail: fmt.Sprintf("the camfeed service (%s) runs as %s, who is not in group video: it cannot open the camera", unitPath, who),
			Fix: fmt.Sprintf("sudo usermod --append --groups video %s && sudo systemctl restart camfeed (or run sudo camfeed service install again)", who)}
	}
	level := Warning
	if len(m.cameraFeeds()) > 0 {
		level = Fault
	}
	return Result{Level: level, Detail: fmt.Sprintf("%s (no camfeed service installed) is not in group video: camfeed run by %s cannot open the camera", who, who),
		Fix: fmt.Sprintf("sudo usermod --append --groups video %s, then log out and back in", who)}
}

// CMA estimate per camera feed (see cmaNeed).
const (
	cmaOutputBuffers = 6 // rpicam-vid's --buffer-count for video
	cmaRawBuffers    = 4
	cmaHeadroom      = 16 * mib
)

// cmaNeed estimates the contiguous memory (CMA) a camera feed takes.
// libcamera allocates the camera's frame buffers there: rpicam-vid keeps
// six YUV 4:2:0 output frames in flight (1.5 bytes a pixel), the pipeline
// holds about four raw frames from the sensor (its mode's size at its bit
// depth), and the encoder and the display need some more (16 MiB allowed
// for them). The sensor mode is the one configured, else the smallest
// listed that covers the picture, else the picture's own size at 10 bits.
// An estimate, not what libcamera will allocate to the byte.
func cmaNeed(w, h int, mode string, modes []cameras.Mode) (need int64, raw string) {
	rw, rh, bits := w, h, 10
	if f := strings.Split(mode, ":"); len(f) >= 3 {
		a, _ := strconv.Atoi(f[0])
		b, _ := strconv.Atoi(f[1])
		c, _ := strconv.Atoi(f[2])
		if a > 0 && b > 0 && c > 0 {
			rw, rh, bits = a, b, c
		}
	} else {
		found := false
		for _, md := range modes {
			if md.Width >= w && md.Height >= h && (!found || md.Width*md.Height < rw*rh) {
				rw, rh, bits, found = md.Width, md.Height, md.BitDepth, true
			}
		}
	}
	need = cmaOutputBuffers*int64(w*h)*3/2 + cmaRawBuffers*int64(rw*rh*bits/8) + cmaHeadroom
	return need, fmt.Sprintf("%dx%d %d-bit", rw, rh, bits)
}

// checkCMA compares the CMA memory with what the camera feeds need.
func checkCMA(ctx context.Context, m *machine) Result {
	b, err := os.ReadFile(m.path("/proc/meminfo"))
	mi := ParseMeminfo(string(b))
	total, ok := mi["CmaTotal"]
	if err != nil || !ok {
		return Result{Level: OK, Detail: "no CMA in /proc/meminfo (not a Raspberry Pi kernel): nothing to check"}
	}
	free := mi["CmaFree"]
	have := fmt.Sprintf("CmaTotal %s, CmaFree %s", inMiB(total), inMiB(free))
	feeds := m.cameraFeeds()
	if len(feeds) == 0 {
		return Result{Level: OK, Detail: have + "; no feed uses the Pi camera"}
	}
	cams, _ := m.cameras(ctx)
	var need int64
	var parts []string
	for _, name := range feeds {
		f := m.Config.Effective(name)
		w, h, _ := picture(f)
		var modes []cameras.Mode
		if f.Camera < len(cams) {
			modes = cams[f.Camera].Modes
		}
		n, raw := cmaNeed(w, h, f.Mode, modes)
		need += n
		parts = append(parts, fmt.Sprintf("feed %s %dx%d from sensor mode %s", name, w, h, raw))
	}
	detail := fmt.Sprintf("%s; about %s needed (%s)", have, inMiB(need), strings.Join(parts, ", "))
	fix := "raise it: in config.txt change dtoverlay=vc4-kms-v3d to dtoverlay=vc4-kms-v3d,cma-256 (cma-128 on a 512 MB Pi) and reboot, or lower width and height"
	switch {
	case total < need:
		return Result{Level: Fault, Detail: "too little CMA memory for the camera: " + detail, Fix: fix}
	case free < need && m.camfeedRunning() == 0:
		return Result{Level: Warning, Detail: "little CMA memory is free: " + detail + "; another program (the desktop, a browser) uses it",
			Fix: "close that program, or " + fix}
	case free < need:
		detail += fmt.Sprintf("; the running camfeed (PID %d) holds its share already", m.camfeedRunning())
	}
	return Result{Level: OK, Detail: detail}
}

// Memory allowances, the same as the app's Go memory limit
// (internal/app/memlimit.go) and the unit's MemoryMax (internal/systemd):
// the ring may hold twice a feed's budget, each viewer the limits admit
// takes up to 256 KiB, the runtime and outputs 24 MiB, and each camera
// feed's rpicam-vid about 64 MiB of its own.
const (
	memBase      = 24 * mib
	memPerViewer = 256 << 10
	memPerCamera = 64 * mib
)

// checkMemory compares the memory available with what the config lets
// camfeed take at most.
func checkMemory(ctx context.Context, m *machine) Result {
	b, err := os.ReadFile(m.path("/proc/meminfo"))
	avail, ok := ParseMeminfo(string(b))["MemAvailable"]
	if err != nil || !ok {
		return Result{Level: OK, Detail: "no MemAvailable in /proc/meminfo: nothing to check"}
	}
	c := m.Config
	var budgets int64
	for _, name := range c.FeedNames() {
		budgets += int64(c.Effective(name).BudgetBytes())
	}
	cams := int64(len(m.cameraFeeds()))
	viewers := int64(c.Limits.MaxViewers)
	need := 2*budgets + memBase + viewers*memPerViewer + cams*memPerCamera
	procs := "camera processes"
	if cams == 1 {
		procs = "camera process"
	}
	detail := fmt.Sprintf("MemAvailable %s; the config may take about %s (twice the pre-roll budgets of %s; %d viewers at 256 KiB; %d %s at 64 MiB; 24 MiB base)",
		inMiB(avail), inMiB(need), inMiB(budgets), viewers, cams, procs)
	fix := "lower buffer (such as buffer: 10s) or limits.max_viewers, or stop other programs"
	if viewers <= 0 {
		return Result{Level: Warning, Detail: detail + ", but max_viewers is 0: nothing bounds what viewers take",
			Fix: "set limits.max_viewers (64 by default)"}
	}
	if pid := m.camfeedRunning(); pid != 0 {
		detail += fmt.Sprintf("; camfeed (PID %d) is running, so its own use is already taken from MemAvailable", pid)
		if avail < need/4 {
			return Result{Level: Warning, Detail: "memory is short: " + detail, Fix: fix}
		}
		return Result{Level: OK, Detail: detail}
	}
	if avail < need {
		return Result{Level: Fault, Detail: "too little memory for the config: " + detail, Fix: fix}
	}
	return Result{Level: OK, Detail: detail}
}
