package cameras

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lister finds cameras. Its fields are the outside world, so tests can
// replace them; DefaultLister uses the real system.
type Lister struct {
	// Tools are tried in order; the first found on PATH is run with
	// --list-cameras.
	Tools []string
	// LookPath and Output find and run a tool (exec.LookPath and
	// exec.CommandContext(...).Output by default).
	LookPath func(string) (string, error)
	Output   func(ctx context.Context, name string, args ...string) ([]byte, error)
	// SysClass is sysfs's video4linux class directory; DevDir holds the
	// device nodes.
	SysClass string
	DevDir   string
	// Formats returns a V4L2 device's capture formats as FourCCs; nil
	// skips the check.
	Formats func(dev string) ([]string, error)
	// Timeout bounds the tool: listing can hang when the camera stack is
	// wedged.
	Timeout time.Duration
}

// DefaultLister returns a Lister for this machine.
func DefaultLister() *Lister {
	return &Lister{
		Tools:    []string{"rpicam-hello", "libcamera-hello"},
		LookPath: exec.LookPath,
		// Both streams: which one the list goes to has changed between
		// versions, and the parser skips libcamera's log lines.
		Output: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		},
		SysClass: "/sys/class/video4linux",
		DevDir:   "/dev",
		Formats:  deviceFormats,
		Timeout:  15 * time.Second,
	}
}

// List returns the cameras of this machine: Raspberry Pi cameras, then USB
// cameras, using DefaultLister.
func List(ctx context.Context) ([]Camera, error) { return DefaultLister().List(ctx) }

// List returns every camera it finds, and an error that says what is
// missing: ErrNoTool when rpicam-apps is not installed (USB cameras are
// still listed), ErrNoCameras when there is nothing at all. A caller
// prints the cameras and then the error, and fails only without cameras.
func (l *Lister) List(ctx context.Context) ([]Camera, error) {
	csi, csiErr := l.listCSI(ctx)
	usb, usbErr := l.listUSB()
	cams := append(csi, usb...)
	if csiErr != nil {
		return cams, errors.Join(csiErr, usbErr)
	}
	if len(cams) == 0 {
		return nil, errors.Join(ErrNoCameras, usbErr)
	}
	return cams, usbErr
}

func (l *Lister) listCSI(ctx context.Context) ([]Camera, error) {
	tool := ""
	for _, t := range l.Tools {
		if p, err := l.LookPath(t); err == nil {
			tool = p
			break
		}
	}
	if tool == "" {
		return nil, ErrNoTool
	}
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	out, err := l.Output(ctx, tool, "--list-cameras")
	cams := ParseList(string(out))
	if err != nil && len(cams) == 0 {
		return nil, fmt.Errorf("cameras: %s --list-cameras: %w: %s", filepath.Base(tool), err, lastLine(out))
	}
	return cams, nil
}

// listUSB lists V4L2 capture devices that sit on USB. The Pi's own V4L2
// nodes (the CSI receiver, ISP and codec) are left out: they are not
// cameras one can open on their own. Of each UVC camera's nodes only
// index 0 captures video; the other carries metadata.
func (l *Lister) listUSB() ([]Camera, error) {
	entries, err := os.ReadDir(l.SysClass)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cameras: %w", err)
	}
	var cams []Camera
	for _, e := range entries {
		node := e.Name()
		if !strings.HasPrefix(node, "video") {
			continue
		}
		dir := filepath.Join(l.SysClass, node)
		if idx, err := readTrim(filepath.Join(dir, "index")); err == nil && idx != "0" {
			continue
		}
		sub, err := os.Readlink(filepath.Join(dir, "device", "subsystem"))
		if err != nil || filepath.Base(sub) != "usb" {
			continue
		}
		name, _ := readTrim(filepath.Join(dir, "name"))
		dev := filepath.Join(l.DevDir, node)
		c := Camera{Kind: KindUSB, Index: -1, Sensor: name, Path: dev}
		if l.Formats != nil {
			if f, err := l.Formats(dev); err == nil {
				c.Formats = f
				c.H264 = slices.Contains(f, "H264")
			}
		}
		c.Source = usbSource(dev, c.H264)
		cams = append(cams, c)
	}
	slices.SortFunc(cams, func(a, b Camera) int { return nodeNumber(a.Path) - nodeNumber(b.Path) })
	return cams, nil
}

// usbSource is an exec: source for a USB camera: a copy when the camera
// makes H.264, otherwise a low-latency software encode (which a Pi 4
// manages at 720p30, a Pi 5 at 1080p30).
func usbSource(dev string, h264 bool) string {
	if h264 {
		return "exec:ffmpeg -hide_banner -loglevel error -f v4l2 -input_format h264 -i " + dev + " -c:v copy -f h264 -"
	}
	return "exec:ffmpeg -hide_banner -loglevel error -f v4l2 -i " + dev +
		" -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -f h264 -"
}

func nodeNumber(path string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(path), "video"))
	return n
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func readTrim(p string) (string, error) {
	b, err := os.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}

// fourCC spells a V4L2 pixel format code ("H264", "MJPG", "YUYV").
func fourCC(v uint32) string {
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	return strings.TrimRight(string(b), " \x00")
}
