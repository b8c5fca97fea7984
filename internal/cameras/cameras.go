// Package cameras finds the cameras camfeed can stream: Raspberry Pi
// cameras through rpicam-apps (`rpicam-hello --list-cameras`, or the older
// libcamera-hello), and USB (UVC) cameras through V4L2 in /dev/video*.
package cameras

import (
	"errors"
	"fmt"
)

// Errors callers branch on; their text tells a person what to do.
var (
	ErrNoTool    = errors.New("rpicam-apps not installed: sudo apt install rpicam-apps")
	ErrNoCameras = errors.New("no cameras detected: check the ribbon cable and that the camera is enabled")
)

// Kinds of camera.
const (
	KindCSI = "csi" // a Raspberry Pi camera on the CSI connector, via libcamera
	KindUSB = "usb" // a UVC camera, via V4L2
)

// Camera is one camera and what it can do.
type Camera struct {
	Kind   string `json:"kind"`
	Index  int    `json:"index"`  // rpicam --camera N; -1 for USB cameras
	Sensor string `json:"sensor"` // imx708_wide; for USB, the device's name
	Model  string `json:"model,omitempty"`
	Path   string `json:"path"` // libcamera id, or /dev/videoN

	// CSI: the full pixel array, its native bit depth and Bayer order.
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`
	BitDepth int    `json:"bit_depth,omitempty"`
	Bayer    string `json:"bayer,omitempty"`
	Modes    []Mode `json:"modes,omitempty"`

	// USB: the pixel formats offered (FourCC: H264, MJPG, YUYV, ...) and
	// whether the camera encodes H.264 itself, so camfeed only copies it.
	Formats []string `json:"formats,omitempty"`
	H264    bool     `json:"h264,omitempty"`

	// Source is what to put in feeds.NAME.source to stream this camera.
	Source string `json:"source"`
}

// Mode is one sensor mode: the raw size the sensor reads out, before the
// ISP scales it. Picking one with `mode:` trades field of view, frame rate
// and noise.
type Mode struct {
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	BitDepth int     `json:"bit_depth"`
	MaxFPS   float64 `json:"max_fps,omitempty"` // 0 when rpicam-apps is too old to say
	Packing  string  `json:"packing"`           // P (CSI-2 packed) or U (unpacked)
	Format   string  `json:"format"`            // libcamera's name, e.g. SRGGB10_CSI2P
	Crop     string  `json:"crop,omitempty"`    // the sensor area read, e.g. (0, 0)/4608x2592
}

// Spec is the mode as rpicam-vid's --mode (and camfeed's mode:) take it:
// W:H:bit-depth:packing.
func (m Mode) Spec() string {
	return fmt.Sprintf("%d:%d:%d:%s", m.Width, m.Height, m.BitDepth, m.Packing)
}

// models names the official Raspberry Pi cameras by sensor.
var models = map[string]string{
	"ov5647":           "Camera Module 1",
	"imx219":           "Camera Module 2",
	"imx708":           "Camera Module 3",
	"imx708_noir":      "Camera Module 3 NoIR",
	"imx708_wide":      "Camera Module 3 Wide",
	"imx708_wide_noir": "Camera Module 3 Wide NoIR",
	"imx477":           "HQ Camera",
	"imx296":           "Global Shutter Camera",
	"imx500":           "AI Camera",
}
