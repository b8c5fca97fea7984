package cameras

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./internal/cameras -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func read(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseCases drives the parser test, its golden files and the fuzz seeds.
var parseCases = []struct {
	file    string
	sensors []string
	modes   []int
	first   Mode // first mode of the first camera
}{
	{"imx219_pi4.txt", []string{"imx219"}, []int{8},
		Mode{Width: 640, Height: 480, BitDepth: 10, MaxFPS: 206.65, Packing: "P", Format: "SRGGB10_CSI2P", Crop: "(1000, 752)/1280x960"}},
	{"imx708_pi5.txt", []string{"imx708"}, []int{3},
		Mode{Width: 1536, Height: 864, BitDepth: 10, MaxFPS: 120.13, Packing: "P", Format: "SRGGB10_CSI2P", Crop: "(768, 432)/3072x1728"}},
	{"imx477_hq.txt", []string{"imx477"}, []int{4},
		Mode{Width: 1332, Height: 990, BitDepth: 10, MaxFPS: 120.05, Packing: "P", Format: "SRGGB10_CSI2P", Crop: "(696, 528)/2664x1980"}},
	{"dual_pi5.txt", []string{"imx708_wide", "imx477"}, []int{3, 4},
		Mode{Width: 1536, Height: 864, BitDepth: 10, MaxFPS: 120.13, Packing: "P", Format: "SRGGB10_CSI2P", Crop: "(768, 432)/3072x1728"}},
	{"legacy_libcamera.txt", []string{"imx219", "imx477"}, []int{8, 4},
		Mode{Width: 640, Height: 480, BitDepth: 10, Packing: "P", Format: "SRGGB10_CSI2P"}},
	{"none.txt", nil, nil, Mode{}},
}

func TestParseList(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.file, func(t *testing.T) {
			cams := ParseList(read(t, tc.file))
			if len(cams) != len(tc.sensors) {
				t.Fatalf("%d cameras, want %d: %+v", len(cams), len(tc.sensors), cams)
			}
			for i, c := range cams {
				if c.Sensor != tc.sensors[i] || c.Index != i || c.Kind != KindCSI || c.Source != "rpicam" {
					t.Errorf("camera %d: %+v", i, c)
				}
				if len(c.Modes) != tc.modes[i] {
					t.Errorf("camera %d: %d modes, want %d", i, len(c.Modes), tc.modes[i])
				}
			}
			if len(cams) > 0 && cams[0].Modes[0] != tc.first {
				t.Errorf("first mode %+v, want %+v", cams[0].Modes[0], tc.first)
			}
			js, _ := json.MarshalIndent(cams, "", "  ")
			golden(t, strings.TrimSuffix(tc.file, ".txt")+".json", append(js, '\n'))
		})
	}
}

func TestParseDetails(t *testing.T) {
	hq := ParseList(read(t, "imx477_hq.txt"))[0]
	if hq.Model != "HQ Camera" || hq.Width != 4056 || hq.Height != 3040 || hq.BitDepth != 12 || hq.Bayer != "RGGB" ||
		hq.Path != "/base/soc/i2c0mux/i2c@1/imx477@1a" {
		t.Errorf("%+v", hq)
	}
	if m := hq.Modes[3]; m.Spec() != "4056:3040:12:P" || m.MaxFPS != 10 {
		t.Errorf("full-resolution mode %+v", m)
	}
	v2 := ParseList(read(t, "imx219_pi4.txt"))[0]
	if m := v2.Modes[4]; m.Spec() != "640:480:8:U" || m.Format != "SRGGB8" {
		t.Errorf("8-bit unpacked mode %+v, spec %s", m, m.Spec())
	}
	if v2.Model != "Camera Module 2" {
		t.Errorf("model %q", v2.Model)
	}
	wide := ParseList(read(t, "dual_pi5.txt"))[0]
	if wide.Model != "Camera Module 3 Wide" || !strings.HasPrefix(wide.Path, "/base/axi/pcie@120000/rp1/") {
		t.Errorf("%+v", wide)
	}
}

func TestFormat(t *testing.T) {
	cams := ParseList(read(t, "dual_pi5.txt"))
	cams = append(cams,
		Camera{Kind: KindUSB, Index: -1, Sensor: "HD Pro Webcam C920", Path: "/dev/video0", Formats: []string{"YUYV", "H264", "MJPG"}, H264: true, Source: usbSource("/dev/video0", true)},
		Camera{Kind: KindUSB, Index: -1, Sensor: "USB2.0 PC CAMERA", Path: "/dev/video2", Formats: []string{"YUYV"}, Source: usbSource("/dev/video2", false)},
	)
	var text, js bytes.Buffer
	if err := Format(&text, cams, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "format.golden", text.Bytes())
	if err := Format(&js, cams, true); err != nil {
		t.Fatal(err)
	}
	var back []Camera
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != 4 || !back[2].H264 {
		t.Errorf("JSON does not round-trip: %v %+v", err, back)
	}
	js.Reset()
	Format(&js, nil, true)
	if js.String() != "[]\n" {
		t.Errorf("no cameras as JSON: %q", js.String())
	}
}

// fakeSys builds a sysfs video4linux class with a UVC camera (capture and
// metadata nodes) and the Pi's own codec node, which must not be listed.
func fakeSys(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	class := filepath.Join(root, "class")
	node := func(name, dev, index, subsystem string) {
		d := filepath.Join(class, name)
		devDir := filepath.Join(root, "devices", dev)
		os.MkdirAll(d, 0o755)
		os.MkdirAll(devDir, 0o755)
		os.WriteFile(filepath.Join(d, "name"), []byte(dev+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "index"), []byte(index+"\n"), 0o644)
		if err := os.Symlink(devDir, filepath.Join(d, "device")); err != nil {
			t.Fatal(err)
		}
		os.Symlink(filepath.Join(root, "bus", subsystem), filepath.Join(devDir, "subsystem"))
	}
	node("video0", "HD Pro Webcam C920", "0", "usb")
	node("video1", "HD Pro Webcam C920", "1", "usb")
	node("video11", "bcm2835-codec-encode", "0", "platform")
	return class
}

func TestList(t *testing.T) {
	class := fakeSys(t)
	out := read(t, "imx708_pi5.txt")
	l := &Lister{
		Tools: []string{"rpicam-hello", "libcamera-hello"},
		LookPath: func(name string) (string, error) {
			if name == "libcamera-hello" { // an older Pi OS
				return "/usr/bin/libcamera-hello", nil
			}
			return "", exec.ErrNotFound
		},
		Output: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			if name != "/usr/bin/libcamera-hello" || strings.Join(args, " ") != "--list-cameras" {
				t.Errorf("ran %s %v", name, args)
			}
			return []byte(out), nil
		},
		SysClass: class,
		DevDir:   "/dev",
		Formats: func(dev string) ([]string, error) {
			if dev != "/dev/video0" {
				t.Errorf("formats of %s", dev)
			}
			return []string{"YUYV", "MJPG", "H264"}, nil
		},
	}
	cams, err := l.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cams) != 2 || cams[0].Sensor != "imx708" || cams[1].Path != "/dev/video0" || !cams[1].H264 ||
		!strings.Contains(cams[1].Source, "-input_format h264 -i /dev/video0 -c:v copy") {
		t.Errorf("%+v", cams)
	}

	// No rpicam-apps: the USB camera is still listed, with ErrNoTool.
	l.LookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	cams, err = l.List(context.Background())
	if !errors.Is(err, ErrNoTool) || len(cams) != 1 {
		t.Errorf("no tool: %v, %+v", err, cams)
	}
	if err.Error() != "rpicam-apps not installed: sudo apt install rpicam-apps" {
		t.Errorf("message %q", err)
	}

	// The tool fails: its last line says why.
	l.LookPath = exec.LookPath
	l.Tools = []string{"true"}
	l.Output = func(context.Context, string, ...string) ([]byte, error) {
		return []byte("[0:00:01.1] [99]  INFO Camera camera_manager.cpp:326 libcamera v0.3.2\nERROR: *** failed to start camera manager ***\n"), errors.New("exit status 255")
	}
	cams, err = l.List(context.Background())
	if err == nil || !strings.HasSuffix(err.Error(), "exit status 255: ERROR: *** failed to start camera manager ***") || len(cams) != 1 {
		t.Errorf("tool failure: %v, %+v", err, cams)
	}

	// rpicam-apps but no camera and no USB camera.
	l.LookPath = exec.LookPath
	l.Tools = []string{"true"}
	l.Output = func(context.Context, string, ...string) ([]byte, error) { return []byte(read(t, "none.txt")), nil }
	l.SysClass = filepath.Join(t.TempDir(), "absent")
	cams, err = l.List(context.Background())
	if !errors.Is(err, ErrNoCameras) || len(cams) != 0 {
		t.Errorf("none: %v, %+v", err, cams)
	}
	if err.Error() != "no cameras detected: check the ribbon cable and that the camera is enabled" {
		t.Errorf("message %q", err)
	}
}

func TestPiModel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model")
	os.WriteFile(p, []byte("Raspberry Pi 5 Model B Rev 1.0\x00"), 0o644)
	if got := PiModel(p); got != "Raspberry Pi 5 Model B Rev 1.0" {
		t.Errorf("%q", got)
	}
	if got := PiModel(filepath.Join(t.TempDir(), "absent")); got != "" {
		t.Errorf("absent: %q", got)
	}
	for model, want := range map[string]bool{
		"Raspberry Pi 5 Model B Rev 1.0":          false,
		"Raspberry Pi 500 Rev 1.0":                false,
		"Raspberry Pi Compute Module 5 Rev 1.0":   false,
		"Raspberry Pi 4 Model B Rev 1.4":          true,
		"Raspberry Pi 400 Rev 1.0":                true,
		"Raspberry Pi Compute Module 4 Rev 1.0":   true,
		"Raspberry Pi Zero 2 W Rev 1.0":           true,
		"Raspberry Pi 3 Model B Plus Rev 1.3":     true,
		"Raspberry Pi Model B Rev 2":              true,
		"":                                        false,
		"Radxa ROCK 5B":                           false,
		"Raspberry Pi 5 Model B Rev 1.1 (fake)\n": false,
	} {
		if got := HasHardwareH264(model); got != want {
			t.Errorf("%q: %v, want %v", model, got, want)
		}
	}
}

func TestFourCC(t *testing.T) {
	if got := fourCC(0x34363248); got != "H264" {
		t.Errorf("%q", got)
	}
	if got := fourCC('Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24); got != "YUYV" {
		t.Errorf("%q", got)
	}
}

func FuzzParseList(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(read(f, tc.file))
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range ParseList(s) {
			for _, m := range c.Modes {
				if m.Width < 0 || m.Height < 0 || m.Format == "" {
					t.Fatalf("bad mode %+v", m)
				}
			}
		}
	})
}
