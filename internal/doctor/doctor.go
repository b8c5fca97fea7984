// Package doctor checks the machine camfeed runs on for the faults that
// break most Raspberry Pi camera set-ups, none of them a software bug: a
// camera not detected (a cable in backwards), the legacy camera stack, the
// service user outside the video group, too little CMA memory,
// under-voltage and heat, another program holding the camera, a Pi 5
// asked for hardware encoding, too little RAM for the configured pre-roll
// and viewers, and ports already taken.
//
// Each check is a function over an Env: the root of the file system it
// reads (/proc, /sys, /boot, /etc), the PATH it finds tools on, and how it
// runs them and binds ports. Tests give it fake trees and fake tools.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/cameras"
	"github.com/camfeed/camfeed/internal/config"
)

// Level is a check's outcome.
type Level string

// Levels, from good to bad.
const (
	OK      Level = "ok"
	Warning Level = "warning"
	Fault   Level = "fault"
)

// Result is one check's outcome: what was found, and for a warning or a
// fault what to do about it, in plain words.
type Result struct {
	Check  string `json:"check"`
	Level  Level  `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Env is the machine the checks look at. Zero fields mean this machine
// (see Defaults).
type Env struct {
	// Root is prepended to every file the checks read: /proc, /sys,
	// /boot, /etc, /dev. "" is "/".
	Root string
	// Path is the PATH the tools (rpicam-hello, vcgencmd) are found on.
	Path string
	// Run runs a tool and returns its output, both streams. Nil runs it
	// with Path as its PATH.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Bind tries to bind a network ("tcp", "udp") address and releases
	// it at once. Nil uses net.Listen and net.ListenPacket.
	Bind func(network, addr string) error
	// Config is camfeed's configuration, as config.Load gives it.
	Config *config.Config
	// Self is the PID doctor runs as, left out of the process scan.
	Self int
	// User is who runs doctor: the user checked for the video group when
	// no camfeed service is installed.
	User string
	// Timeout bounds each tool run (listing cameras can hang when the
	// camera stack is wedged).
	Timeout time.Duration
}

// Defaults returns an Env for this machine with cfg.
func Defaults(cfg *config.Config) Env {
	e := Env{Root: "/", Path: os.Getenv("PATH"), Config: cfg, Self: os.Getpid(), Timeout: 15 * time.Second}
	if u, err := user.Current(); err == nil {
		e.User = u.Username
	}
	return e
}

// check is one check: a name for the JSON and the text, and its function.
type check struct {
	name string
	fn   func(ctx context.Context, m *machine) Result
}

// checks are run in this order: what the machine is, then the camera,
// then the power, then what camfeed's config asks of the machine.
func checks() []check {
	return []check{
		{"model", checkModel},
		{"camera", checkCamera},
		{"camera-stack", checkCameraStack},
		{"video-group", checkVideoGroup},
		{"camera-busy", checkCameraBusy},
		{"cma", checkCMA},
		{"power", checkPower},
		{"temperature", checkTemperature},
		{"memory", checkMemory},
		{"ports", checkPorts},
	}
}

// Run runs every check.
func Run(ctx context.Context, env Env) []Result {
	m := newMachine(env)
	var out []Result
	for _, c := range checks() {
		r := c.fn(ctx, m)
		r.Check = c.name
		out = append(out, r)
	}
	return out
}

// Faulty reports whether any result is a fault.
func Faulty(rs []Result) bool {
	for _, r := range rs {
		if r.Level == Fault {
			return true
		}
	}
	return false
}

// Print writes one line per result, then a summary line; asJSON writes
// {"checks": [...], "faults": N, "warnings": N} instead.
func Print(w io.Writer, rs []Result, asJSON bool) error {
	faults, warnings := 0, 0
	for _, r := range rs {
		switch r.Level {
		case Fault:
			faults++
		case Warning:
			warnings++
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Checks   []Result `json:"checks"`
			Faults   int      `json:"faults"`
			Warnings int      `json:"warnings"`
		}{rs, faults, warnings})
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%-7s  %-12s  %s", r.Level, r.Check, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(&b, ". Fix: %s", r.Fix)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%d checks: %d faults, %d warnings\n", len(rs), faults, warnings)
	_, err := io.WriteString(w, b.String())
	return err
}

// machine is the Env with what several checks read, read once.
type machine struct {
	Env

	camsOnce sync.Once
	cams     []cameras.Camera // Pi (CSI) cameras only
	camsErr  error

	procsOnce  sync.Once
	procs      map[int]*process
	unreadable int
}

func newMachine(e Env) *machine {
	if e.Root == "" {
		e.Root = "/"
	}
	if e.Run == nil {
		path := e.Path
		e.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			cmd := exec.CommandContext(ctx, name, args...)
			cmd.Env = append(os.Environ(), "PATH="+path)
			return cmd.CombinedOutput()
		}
	}
	if e.Bind == nil {
		e.Bind = bind
	}
	if e.Config == nil {
		e.Config = config.Default()
	}
	if e.Timeout <= 0 {
		e.Timeout = 15 * time.Second
	}
	return &machine{Env: e}
}

func bind(network, addr string) error {
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// path is p under the Env's root.
func (m *machine) path(p string) string { return filepath.Join(m.Root, p) }

// look finds an executable on the Env's PATH, as exec.LookPath does on the
// process's.
func (m *machine) look(name string) (string, error) {
	for _, dir := range filepath.SplitList(m.Path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// run runs a tool within the Env's timeout.
func (m *machine) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	return m.Run(ctx, name, args...)
}

// model is the board's name from the device tree, "" off a Pi.
func (m *machine) model() string { return cameras.PiModel(m.path(cameras.ModelPath)) }

// isPi reports whether the board is a Raspberry Pi.
func (m *machine) isPi() bool { return strings.HasPrefix(m.model(), "Raspberry Pi") }

// cameras lists the Pi cameras once, as `camfeed cameras` does.
func (m *machine) cameras(ctx context.Context) ([]cameras.Camera, error) {
	m.camsOnce.Do(func() {
		l := &cameras.Lister{
			Tools:    []string{"rpicam-hello", "libcamera-hello", "rpicam-vid", "libcamera-vid"},
			LookPath: m.look,
			Output:   m.Run,
			SysClass: m.path("/sys/class/video4linux"),
			DevDir:   "/dev",
			Timeout:  m.Timeout,
		}
		all, err := l.List(ctx)
		for _, c := range all {
			if c.Kind == cameras.KindCSI {
				m.cams = append(m.cams, c)
			}
		}
		m.camsErr = err
	})
	return m.cams, m.camsErr
}

// cameraFeeds are the feeds that stream the Pi camera: source rpicam, or
// auto where rpicam-vid is installed (as the app decides).
func (m *machine) cameraFeeds() []string {
	var out []string
	_, vidErr := m.look("rpicam-vid")
	if vidErr != nil {
		_, vidErr = m.look("libcamera-vid")
	}
	for _, name := range m.Config.FeedNames() {
		spec, err := config.ParseSource(m.Config.Feeds[name].Source)
		if err != nil {
			continue
		}
		if spec.Kind == config.SourceRPiCam || (spec.Kind == config.SourceAuto && vidErr == nil) {
			out = append(out, name)
		}
	}
	return out
}

// picture is a camera feed's output size and frame rate, with rpicam-vid's
// unset values taken at the costly end (1080p30) so that estimates err on
// the safe side.
func picture(f config.Feed) (w, h int, fps float64) {
	w, h, fps = f.Width, f.Height, f.Framerate
	if w <= 0 || h <= 0 {
		w, h = 1920, 1080
	}
	if fps <= 0 {
		fps = 30
	}
	return w, h, fps
}

const mib = 1 << 20

func inMiB(b int64) string { return fmt.Sprintf("%d MiB", (b+mib/2)/mib) }
