package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
)

// fake is a machine in temporary directories: a root with fake /proc,
// /sys, /boot and /etc trees, and a bin directory of shell-script tools
// that is the whole PATH.
type fake struct {
	t         *testing.T
	root, bin string
	env       Env
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, root: t.TempDir(), bin: t.TempDir()}
	f.env = Env{Root: f.root, Path: f.bin, Config: config.Default(), Self: 1, User: "pi",
		// Nothing is bound unless a test binds loopback itself.
		Bind: func(string, string) error { return nil }}
	return f
}

func (f *fake) file(path, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// tool puts a shell script on the fake PATH.
func (f *fake) tool(name, script string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.bin, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// pi makes the machine a Raspberry Pi of this model (the device tree's
// string ends in a NUL).
func (f *fake) pi(model string) { f.file("/proc/device-tree/model", model+"\x00") }

// proc adds a process with open files: fds are link targets such as
// /dev/video0 or socket:[1234].
func (f *fake) proc(pid, ppid int, comm string, fds ...string) {
	f.t.Helper()
	dir := fmt.Sprintf("/proc/%d", pid)
	f.file(dir+"/comm", comm+"\n")
	f.file(dir+"/status", fmt.Sprintf("Name:\t%s\nPPid:\t%d\n", comm, ppid))
	if err := os.MkdirAll(filepath.Join(f.root, dir, "fd"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	for i, target := range fds {
		if err := os.Symlink(target, filepath.Join(f.root, dir, "fd", fmt.Sprint(i+3))); err != nil {
			f.t.Fatal(err)
		}
	}
}

// camera lists a Camera Module 3 on a Pi 5 (the camera discovery tests'
// capture of rpicam-hello --list-cameras).
func (f *fake) camera() {
	abs, err := filepath.Abs("../cameras/testdata/imx708_pi5.txt")
	if err != nil {
		f.t.Fatal(err)
	}
	f.tool("rpicam-hello", catTool(f.t)+" "+abs)
	f.tool("rpicam-vid", "exit 0")
}

// catTool is cat's full path: a fake tool runs with only the fake PATH.
func catTool(t *testing.T) string {
	p, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fake) feed(fn func(*config.Feed)) { fn(f.env.Config.Feeds[config.DefaultFeed]) }

// check runs one check by name.
func (f *fake) check(name string) Result {
	f.t.Helper()
	for _, c := range checks() {
		if c.name == name {
			r := c.fn(context.Background(), newMachine(f.env))
			r.Check = name
			return r
		}
	}
	f.t.Fatalf("no check %q", name)
	return Result{}
}

type checkCase struct {
	name  string
	setup func(f *fake)
	level Level
	want  []string // in Detail or Fix
}

func runCases(t *testing.T, check string, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			r := f.check(check)
			if r.Level != tc.level {
				t.Errorf("level %s, want %s: %+v", r.Level, tc.level, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Detail+" Fix: "+r.Fix, w) {
					t.Errorf("%q not in %+v", w, r)
				}
			}
			if r.Level != OK && r.Fix == "" {
				t.Errorf("a %s without a fix: %+v", r.Level, r)
			}
		})
	}
}

func TestCheckModel(t *testing.T) {
	runCases(t, "model", []checkCase{
		{"not a pi", nil, OK, []string{"not a Raspberry Pi"}},
		{"pi 4", func(f *fake) { f.pi("Raspberry Pi 4 Model B Rev 1.4") }, OK, []string{"Pi 4 Model B Rev 1.4: hardware H.264 encoder"}},
		{"pi zero 2", func(f *fake) { f.pi("Raspberry Pi Zero 2 W Rev 1.0") }, OK, []string{"hardware H.264"}},
		{"pi 5 software", func(f *fake) {
			f.pi("Raspberry Pi 5 Model B Rev 1.0")
			f.camera()
		}, OK, []string{"no H.264 encoder", "software (libx264)", "feed cam (1920x1080 at 30 fps) about 1.0 of its 4 cores"}},
		{"pi 5 at 4k", func(f *fake) {
			f.pi("Raspberry Pi 5 Model B Rev 1.0")
			f.camera()
			f.feed(func(c *config.Feed) { c.Width, c.Height = 3840, 2160 })
		}, Warning, []string{"about 4.0 of its 4 cores", "lower width"}},
		{"pi 5 asked for hardware", func(f *fake) {
			f.pi("Raspberry Pi 5 Model B Rev 1.0")
			f.feed(func(c *config.Feed) { c.Source, c.ExtraArgs = "rpicam", []string{"--codec", "h264"} })
		}, Fault, []string{"no H.264 encoder, but feed cam asks for it (extra_args --codec h264)"}},
		{"pi 5 exec v4l2m2m", func(f *fake) {
			f.pi("Raspberry Pi 5 Model B Rev 1.0")
			f.feed(func(c *config.Feed) { c.Source = "exec:ffmpeg -f v4l2 -i /dev/video0 -c:v h264_v4l2m2m -f h264 -" })
		}, Fault, []string{"h264_v4l2m2m"}},
	})
}

func TestCheckCamera(t *testing.T) {
	rpicam := func(c *config.Feed) { c.Source = "rpicam" }
	runCases(t, "camera", []checkCase{
		{"no tools, not a pi", nil, OK, []string{"no feed uses the Pi camera"}},
		{"no tools on a pi", func(f *fake) { f.pi("Raspberry Pi 4 Model B Rev 1.4") }, Warning, []string{"test pattern", "sudo apt install rpicam-apps"}},
		{"no tools, rpicam feed", func(f *fake) { f.feed(rpicam) }, Fault, []string{"rpicam-apps is not installed, and feed cam uses the Pi camera", "apt install rpicam-apps"}},
		{"no camera", func(f *fake) {
			f.feed(rpicam)
			f.tool("rpicam-hello", `echo "No cameras available!"`)
		}, Fault, []string{"lists no camera, and feed cam uses it", "ribbon cable", "backwards"}},
		{"listed", func(f *fake) { f.camera() }, OK, []string{"camera 0: imx708 (Camera Module 3), modes 1536x864 120 fps, 2304x1296 56 fps, 4608x2592 14 fps"}},
		{"only rpicam-vid", func(f *fake) {
			abs, _ := filepath.Abs("../cameras/testdata/imx477_hq.txt")
			f.tool("rpicam-vid", `[ "$1" = --list-cameras ] && `+catTool(f.t)+" "+abs)
		}, OK, []string{"imx477 (HQ Camera)"}},
		{"index out of range", func(f *fake) {
			f.camera()
			f.feed(func(c *config.Feed) { c.Camera = 1 })
		}, Fault, []string{"feed cam uses camera 1, but only 1 found", "feeds.cam.camera"}},
		{"unknown mode", func(f *fake) {
			f.camera()
			f.feed(func(c *config.Feed) { c.Mode = "1920:1080:10:P" })
		}, Warning, []string{"mode 1920:1080:10:P, which camera 0 does not list"}},
		{"listed mode", func(f *fake) {
			f.camera()
			f.feed(func(c *config.Feed) { c.Mode = "2304:1296:10:P" })
		}, OK, nil},
	})
}

func TestCheckCameraStack(t *testing.T) {
	boot := func(text string) func(f *fake) {
		return func(f *fake) { f.file("/boot/firmware/config.txt", text) }
	}
	runCases(t, "camera-stack", []checkCase{
		{"no config.txt", nil, OK, []string{"not a Raspberry Pi"}},
		{"auto detect", boot("# comment\ncamera_auto_detect=1\ndisplay_auto_detect=1\n"), OK, []string{"camera_auto_detect=1 in /boot/firmware/config.txt"}},
		{"legacy", boot("[all]\nstart_x=1\ngpu_mem=128\n"), Fault, []string{"legacy camera stack is on (start_x=1", "Legacy Camera", "reboot"}},
		{"legacy in old place", func(f *fake) { f.file("/boot/config.txt", "start_x=1\n") }, Fault, []string{"/boot/config.txt"}},
		{"legacy commented out", boot("#start_x=1\ncamera_auto_detect=1\n"), OK, nil},
		{"by hand", boot("camera_auto_detect=0\ndtoverlay=imx219,cam0\n"), OK, []string{"by hand: dtoverlay=imx219"}},
		{"detection off", boot("camera_auto_detect=0\ndtoverlay=vc4-kms-v3d\n"), Fault, []string{"camera_auto_detect=0", "set camera_auto_detect=1"}},
		{"not set", boot("dtparam=audio=on\n"), Warning, []string{"add camera_auto_detect=1"}},
	})
}

func TestCheckVideoGroup(t *testing.T) {
	groups := func(video string) func(f *fake) {
		return func(f *fake) {
			f.file("/etc/group", "root:x:0:\nvideo:x:44:"+video+"\ncamfeed:x:999:\n")
			f.file("/etc/passwd", "root:x:0:0::/root:/bin/sh\npi:x:1000:1000::/home/pi:/bin/bash\ncamfeed:x:999:999::/:/usr/sbin/nologin\ncam2:x:998:44::/:/usr/sbin/nologin\n")
		}
	}
	unit := func(body string) func(f *fake) {
		return func(f *fake) {
			groups("pi")(f)
			f.file("/etc/systemd/system/camfeed.service", "[Unit]\nDescription=x\n\n[Service]\n"+body+"\n")
		}
	}
	runCases(t, "video-group", []checkCase{
		{"no group file", nil, OK, nil},
		{"user in video", groups("pi,other"), OK, []string{"pi (no camfeed service installed) is in group video"}},
		{"user not in video", groups("other"), Warning, []string{"pi (no camfeed service installed) is not in group video", "usermod --append --groups video pi"}},
		{"user not in video, camera feed", func(f *fake) {
			groups("")(f)
			f.feed(func(c *config.Feed) { c.Source = "rpicam" })
		}, Fault, []string{"cannot open the camera"}},
		{"no video group on a pi", func(f *fake) {
			f.pi("Raspberry Pi 3 Model B Plus Rev 1.3")
			f.file("/etc/group", "root:x:0:\n")
		}, Warning, []string{"no video group"}},
		{"unit gives video", unit("User=camfeed\nSupplementaryGroups=video render"), OK, []string{"runs as camfeed with group video (/etc/systemd/system/camfeed.service)"}},
		{"unit without video", unit("User=camfeed"), Fault, []string{"runs as camfeed, who is not in group video", "sudo usermod --append --groups video camfeed"}},
		{"unit user's primary group", unit("User=cam2"), OK, []string{"runs as cam2, in group video"}},
		{"unit as root", unit("ExecStart=/usr/bin/camfeed"), OK, []string{"runs as root, which may open the camera"}},
		{"root, no unit", func(f *fake) {
			groups("")(f)
			f.env.User = "root"
		}, OK, []string{"root (no camfeed service installed) may open the camera"}},
		{"packaged unit", func(f *fake) {
			groups("camfeed")(f)
			f.file("/usr/lib/systemd/system/camfeed.service", "[Service]\nUser=camfeed\n")
		}, OK, []string{"the camfeed service runs as camfeed, in group video"}},
	})
}

func TestCheckCameraBusy(t *testing.T) {
	runCases(t, "camera-busy", []checkCase{
		{"nothing", func(f *fake) { f.proc(50, 1, "bash", "/dev/pts/0") }, OK, []string{"no other program holds a camera device"}},
		{"motion", func(f *fake) {
			f.proc(100, 1, "motion", "/dev/null", "/dev/video0", "/dev/media1")
		}, Fault, []string{"PID 100 (motion) has /dev/video0, /dev/media1 open", "sudo kill PID"}},
		{"a running camfeed's rpicam-vid", func(f *fake) {
			f.proc(200, 1, "camfeed", "socket:[77]")
			f.proc(201, 200, "rpicam-vid", "/dev/media0", "/dev/video0")
		}, Warning, []string{"a running camfeed holds the camera: PID 201 (rpicam-vid)", "systemctl stop camfeed"}},
		{"the codec is shared", func(f *fake) {
			f.file("/sys/class/video4linux/video10/name", "bcm2835-codec-decode\n")
			f.proc(300, 1, "vlc", "/dev/video10")
		}, OK, nil},
		{"doctor itself", func(f *fake) { f.proc(1, 0, "camfeed", "/dev/video0") }, OK, nil},
	})
}

func TestCheckCMA(t *testing.T) {
	meminfo := func(totalMiB, freeMiB int) string {
		return fmt.Sprintf("MemTotal: 948304 kB\nMemAvailable: 500000 kB\nCmaTotal: %d kB\nCmaFree: %d kB\n", totalMiB*1024, freeMiB*1024)
	}
	rpicam := func(w, h int) func(f *fake) {
		return func(f *fake) { f.feed(func(c *config.Feed) { c.Source, c.Width, c.Height = "rpicam", w, h }) }
	}
	runCases(t, "cma", []checkCase{
		{"no cma", func(f *fake) { f.file("/proc/meminfo", "MemTotal: 1000 kB\n") }, OK, []string{"no CMA"}},
		{"no camera feed", func(f *fake) { f.file("/proc/meminfo", meminfo(64, 60)) }, OK, []string{"CmaTotal 64 MiB, CmaFree 60 MiB; no feed uses the Pi camera"}},
		{"enough for 1080p", func(f *fake) {
			f.file("/proc/meminfo", meminfo(256, 200))
			rpicam(1920, 1080)(f)
		}, OK, []string{"about 44 MiB needed (feed cam 1920x1080 from sensor mode 1920x1080 10-bit)"}},
		{"sensor mode from the camera list", func(f *fake) {
			f.file("/proc/meminfo", meminfo(256, 200))
			f.camera()
			rpicam(1920, 1080)(f)
		}, OK, []string{"from sensor mode 2304x1296 10-bit"}},
		{"too little for 4k", func(f *fake) {
			f.file("/proc/meminfo", meminfo(64, 60))
			rpicam(3840, 2160)(f)
		}, Fault, []string{"too little CMA memory", "CmaTotal 64 MiB", "cma-256"}},
		{"used by others", func(f *fake) {
			f.file("/proc/meminfo", meminfo(256, 20))
			rpicam(1920, 1080)(f)
		}, Warning, []string{"CmaFree 20 MiB", "another program"}},
		{"used by the running camfeed", func(f *fake) {
			f.file("/proc/meminfo", meminfo(256, 20))
			f.proc(400, 1, "camfeed")
			rpicam(1920, 1080)(f)
		}, OK, []string{"the running camfeed (PID 400) holds its share"}},
	})
}

func TestCheckPower(t *testing.T) {
	vcg := func(out string) func(f *fake) {
		return func(f *fake) { f.tool("vcgencmd", `[ "$1" = get_throttled ] && echo "`+out+`"`) }
	}
	runCases(t, "power", []checkCase{
		{"not a pi", nil, OK, []string{"no vcgencmd"}},
		{"pi without vcgencmd", func(f *fake) { f.pi("Raspberry Pi 4 Model B Rev 1.4") }, Warning, []string{"raspi-utils"}},
		{"healthy", vcg("throttled=0x0"), OK, []string{"no under-voltage or throttling since boot (throttled=0x0)"}},
		{"under-voltage now", vcg("throttled=0x50005"), Fault, []string{
			"now: under-voltage, throttled (throttled=0x50005)", "frames drop", "5.1 V 3 A", "heatsink"}},
		{"under-voltage since boot", vcg("throttled=0x10000"), Warning, []string{"since boot (not now): under-voltage", "stronger power supply"}},
		{"capped now", vcg("throttled=0x20002"), Warning, []string{"now: ARM frequency capped", "cool the Pi"}},
		{"soft limit now", vcg("throttled=0x80008"), Warning, []string{"now: soft temperature limit reached"}},
		{"fails", func(f *fake) { f.tool("vcgencmd", `echo "VCHI initialization failed"; exit 1`) }, Warning, []string{"get_throttled failed: VCHI initialization failed", "/dev/vcio"}},
	})
}

func TestCheckTemperature(t *testing.T) {
	zone := func(milli string) func(f *fake) {
		return func(f *fake) { f.file("/sys/class/thermal/thermal_zone0/temp", milli+"\n") }
	}
	runCases(t, "temperature", []checkCase{
		{"none", nil, OK, []string{"nothing to check"}},
		{"cool", zone("45277"), OK, []string{"SoC at 45.3 °C (thermal_zone0)"}},
		{"warm", zone("72000"), Warning, []string{"close to 80 °C", "heatsink"}},
		{"hot", zone("83500"), Fault, []string{"SoC at 83.5 °C", "throttles from 80 °C"}},
		{"vcgencmd only", func(f *fake) { f.tool("vcgencmd", `echo "temp=51.0'C"`) }, OK, []string{"51.0 °C (vcgencmd measure_temp)"}},
	})
}

func TestCheckMemory(t *testing.T) {
	avail := func(mb int) func(f *fake) {
		return func(f *fake) {
			f.file("/proc/meminfo", fmt.Sprintf("MemTotal: 460000 kB\nMemAvailable: %d kB\n", mb*1024))
		}
	}
	// A 30 s pre-roll, budgeted at 4 Mbit/s with half again (21 MiB).
	preroll30 := func(f *fake) { f.env.Config.Buffer = config.Size{Duration: 30 * time.Second} }
	runCases(t, "memory", []checkCase{
		{"none", nil, OK, nil},
		// Twice the pre-roll; 64 viewers; the test pattern, no camera
		// process.
		{"enough", func(f *fake) { preroll30(f); avail(300)(f) }, OK, []string{"MemAvailable 300 MiB; the config may take about 83 MiB (twice the pre-roll budgets of 21 MiB; 64 viewers at 256 KiB; 0 camera processes"}},
		{"too little", avail(60), Fault, []string{"too little memory", "lower buffer"}},
		{"camera process counted", func(f *fake) {
			preroll30(f)
			avail(120)(f)
			f.feed(func(c *config.Feed) { c.Source = "rpicam" })
		}, Fault, []string{"about 147 MiB", "1 camera process at 64 MiB"}},
		{"camfeed running", func(f *fake) {
			avail(60)(f)
			f.proc(500, 1, "camfeed")
		}, OK, []string{"camfeed (PID 500) is running"}},
		{"no viewer cap", func(f *fake) {
			avail(300)(f)
			f.env.Config.Limits.MaxViewers = 0
		}, Warning, []string{"max_viewers is 0"}},
	})
}

func TestCheckPorts(t *testing.T) {
	// A real port held on loopback, found by binding as camfeed will.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	only := func(f *fake, http string) {
		f.env.Bind = nil // really bind
		c := f.env.Config
		c.HTTP, c.RTSP, c.WebRTC = http, "off", "off"
	}
	// /proc/net/tcp with the port listening (state 0A) on socket 4242.
	netTCP := fmt.Sprintf("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
		"   0: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n", port)
	runCases(t, "ports", []checkCase{
		{"free", func(f *fake) { only(f, "127.0.0.1:0") }, OK, []string{"all 1 configured addresses are free"}},
		{"taken", func(f *fake) { only(f, held) }, Fault, []string{"http " + held + "/tcp:", "address already in use", "--http"}},
		{"taken by nginx", func(f *fake) {
			only(f, held)
			f.file("/proc/net/tcp", netTCP)
			f.proc(600, 1, "nginx", "/dev/null", "socket:[4242]")
		}, Fault, []string{"http " + held + "/tcp is taken by PID 600 (nginx)"}},
		{"taken by camfeed", func(f *fake) {
			only(f, held)
			f.file("/proc/net/tcp", netTCP)
			f.proc(700, 1, "camfeed", "socket:[4242]")
		}, Warning, []string{"taken by PID 700 (camfeed)", "other ports"}},
	})
	// Every configured address is tried, UDP ones included.
	f := newFake(t)
	var tried []string
	f.env.Bind = func(network, addr string) error { tried = append(tried, network+" "+addr); return nil }
	f.env.Config.TCP = ":8001"
	f.check("ports")
	if got := strings.Join(tried, ", "); got != "tcp :8000, tcp :8001, tcp :8554, udp :8000, udp :8001, udp :8189, tcp :8189" {
		t.Errorf("tried %s", got)
	}
}

func TestRunAndPrint(t *testing.T) {
	f := newFake(t)
	f.pi("Raspberry Pi 4 Model B Rev 1.4")
	f.file("/boot/firmware/config.txt", "start_x=1\n")
	f.tool("vcgencmd", `case "$1" in get_throttled) echo throttled=0x50000 ;; measure_temp) echo "temp=48.3'C" ;; esac`)
	rs := Run(context.Background(), f.env)
	if len(rs) != len(checks()) || !Faulty(rs) {
		t.Fatalf("%d results, faulty %v: %+v", len(rs), Faulty(rs), rs)
	}
	var text bytes.Buffer
	if err := Print(&text, rs, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != len(rs)+1 {
		t.Fatalf("%d lines for %d checks:\n%s", len(lines), len(rs), text.String())
	}
	for _, want := range []string{
		"ok       model         Raspberry Pi 4 Model B Rev 1.4: hardware H.264 encoder",
		"fault    camera-stack  the legacy camera stack is on (start_x=1 in /boot/firmware/config.txt): it hides the camera from libcamera and rpicam-apps. Fix: delete the start_x=1 line",
		"warning  power         since boot (not now): under-voltage, throttled (throttled=0x50000); frames drop while it lasts. Fix: use a stronger power supply",
		"ok       temperature   SoC at 48.3 °C (vcgencmd measure_temp)",
		"10 checks: 1 faults, 2 warnings",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("%q not in:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := Print(&js, rs, true); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Checks           []Result
		Faults, Warnings int
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Faults != 1 || got.Warnings != 2 || len(got.Checks) != len(rs) {
		t.Errorf("JSON %s", js.String())
	}
	for i, r := range got.Checks {
		if r != rs[i] {
			t.Errorf("JSON check %d: %+v, want %+v", i, r, rs[i])
		}
	}
	if !strings.Contains(js.String(), `"check": "camera-stack",
      "level": "fault",`) {
		t.Errorf("JSON field names:\n%s", js.String())
	}
}

var parseSeeds = []string{
	"camera_auto_detect=1\ndtoverlay=imx708,cam0 # comment\n[pi4]\nstart_x=1\n",
	"MemTotal:        948304 kB\nMemAvailable:    512000 kB\nCmaTotal:         65536 kB\nHugePages_Total:       0\n",
	"video:x:44:pi,camfeed\nbad line\n",
	"[Service]\nUser=camfeed\nSupplementaryGroups=video render\n",
	"  sl  local_address rem_address   st\n   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n",
	"Name:\tcamfeed\nPPid:\t1\n",
}

func TestParsers(t *testing.T) {
	bc := ParseBootConfig(parseSeeds[0])
	if bc.Values["camera_auto_detect"] != "1" || bc.Values["start_x"] != "1" || strings.Join(bc.Sensors, ",") != "imx708" {
		t.Errorf("%+v", bc)
	}
	mi := ParseMeminfo(parseSeeds[1])
	if mi["CmaTotal"] != 64<<20 || mi["HugePages_Total"] != 0 || mi["MemAvailable"] != 512000*1024 {
		t.Errorf("%v", mi)
	}
	// The memory lines of /proc/PID/status read the same (camfeed-bench).
	if st := ParseMeminfo("Name:\tcamfeed\nVmHWM:\t    2000 kB\nVmRSS:\t    1234 kB\nThreads:\t9\n"); st["VmRSS"] != 1234<<10 || st["VmHWM"] != 2000<<10 {
		t.Errorf("%v", st)
	}
	if g := parseGroups(parseSeeds[2]); strings.Join(g["video"].members, ",") != "pi,camfeed" || g["video"].gid != "44" || len(g) != 1 {
		t.Errorf("%+v", g)
	}
	if u := parseUnit(parseSeeds[3]); u.user != "camfeed" || strings.Join(u.groups, ",") != "video,render" {
		t.Errorf("%+v", u)
	}
	if s := ParseNetSockets(parseSeeds[4], true); strings.Join(s[8000], ",") != "4242" {
		t.Errorf("%v", s)
	}
	if p := parseStatusPPid(parseSeeds[5]); p != 1 {
		t.Errorf("ppid %d", p)
	}
}

// FuzzParsers feeds the same bytes to every parser of the files doctor
// reads: none may panic, whatever a damaged file holds.
func FuzzParsers(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseBootConfig(s)
		for k, v := range ParseMeminfo(s) {
			if v < 0 {
				t.Fatalf("%s: %d", k, v)
			}
		}
		parseGroups(s)
		parseUnit(s)
		ParseNetSockets(s, false)
		parseStatusPPid(s)
		primaryGID(s, "pi")
	})
}
