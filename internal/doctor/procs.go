package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// process is one process of /proc: its name, parent, the camera devices
// it holds open and its sockets.
type process struct {
	pid, ppid int
	comm      string
	devices   []string // /dev/video*, /dev/media*
	sockets   []string // socket inodes
}

// processes scans /proc once. Other users' fd directories cannot be read
// without root: those are counted in m.unreadable, and the checks say so.
func (m *machine) processes() map[int]*process {
	m.procsOnce.Do(func() {
		m.procs = map[int]*process{}
		entries, _ := os.ReadDir(m.path("/proc"))
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == m.Self {
				continue
			}
			dir := m.path(filepath.Join("/proc", e.Name()))
			comm, err := os.ReadFile(filepath.Join(dir, "comm"))
			if err != nil {
				continue // gone
			}
			p := &process{pid: pid, comm: strings.TrimSpace(string(comm))}
			if st, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
				p.ppid = parseStatusPPid(string(st))
			}
			fds, err := os.ReadDir(filepath.Join(dir, "fd"))
			if errors.Is(err, fs.ErrPermission) {
				m.unreadable++
			}
			for _, fd := range fds {
				target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
				if err != nil {
					continue
				}
				if inode, ok := strings.CutPrefix(target, "socket:["); ok {
					p.sockets = append(p.sockets, strings.TrimSuffix(inode, "]"))
				} else if strings.HasPrefix(target, "/dev/video") || strings.HasPrefix(target, "/dev/media") {
					if !slices.Contains(p.devices, target) && !m.sharedDevice(target) {
						p.devices = append(p.devices, target)
					}
				}
			}
			m.procs[pid] = p
		}
	})
	return m.procs
}

// sharedDevice reports whether a V4L2 node is one that many programs may
// open at once: the VideoCore's memory-to-memory codecs (bcm2835-codec),
// which are not the camera.
func (m *machine) sharedDevice(dev string) bool {
	name, err := os.ReadFile(m.path(filepath.Join("/sys/class/video4linux", filepath.Base(dev), "name")))
	return err == nil && strings.Contains(string(name), "codec")
}

// ofCamfeed reports whether p is a camfeed or a child of one (its
// rpicam-vid).
func (m *machine) ofCamfeed(p *process) bool {
	if p.comm == "camfeed" {
		return true
	}
	parent, ok := m.processes()[p.ppid]
	return ok && parent.comm == "camfeed"
}

// camfeedRunning returns the PID of a running camfeed other than doctor's
// own, or 0.
func (m *machine) camfeedRunning() int {
	pids := m.sortedPIDs()
	for _, pid := range pids {
		if m.processes()[pid].comm == "camfeed" {
			return pid
		}
	}
	return 0
}

func (m *machine) sortedPIDs() []int {
	pids := make([]int, 0, len(m.processes()))
	for pid := range m.processes() {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

func (m *machine) unreadableNote() string {
	if m.unreadable == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d processes of other users not readable: sudo camfeed doctor checks them all)", m.unreadable)
}

// checkCameraBusy finds the processes that hold a camera device open:
// libcamera opens a camera for one program at a time, so a stray
// rpicam-vid, motion, or a second camfeed keeps camfeed from it.
func checkCameraBusy(ctx context.Context, m *machine) Result {
	var others, ours []string
	for _, pid := range m.sortedPIDs() {
		p := m.processes()[pid]
		if len(p.devices) == 0 {
			continue
		}
		s := fmt.Sprintf("PID %d (%s) has %s open", p.pid, p.comm, strings.Join(p.devices, ", "))
		if m.ofCamfeed(p) {
			ours = append(ours, s)
		} else {
			others = append(others, s)
		}
	}
	note := m.unreadableNote()
	switch {
	case len(others) > 0:
		return Result{Level: Fault, Detail: "another program holds the camera: " + strings.Join(others, "; ") + note,
			Fix: "stop it (sudo systemctl stop SERVICE if it is a service, else sudo kill PID); camfeed takes the camera on its next retry"}
	case len(ours) > 0:
		return Result{Level: Warning, Detail: "a running camfeed holds the camera: " + strings.Join(ours, "; ") + note,
			Fix: "that is fine for the camfeed service; to start another camfeed on the same camera, stop it first (sudo systemctl stop camfeed)"}
	}
	return Result{Level: OK, Detail: "no other program holds a camera device" + note}
}

// A listen address doctor checks.
type port struct {
	what, network, addr string
}

// ports are the configured addresses camfeed binds.
func (m *machine) ports() []port {
	c := m.Config
	var out []port
	add := func(what, network, addr string) {
		if addr != "" && addr != "off" {
			out = append(out, port{what, network, addr})
		}
	}
	add("http", "tcp", c.HTTP)
	add("tcp", "tcp", c.TCP)
	add("rtsp", "tcp", c.RTSP)
	if c.RTSP != "off" && (len(c.RTSPTransports) == 0 || slices.Contains(c.RTSPTransports, "udp")) {
		add("rtsp_udp_rtp", "udp", cmpOr(c.RTSPUDPRTP, ":8000"))
		add("rtsp_udp_rtcp", "udp", cmpOr(c.RTSPUDPRTCP, ":8001"))
	}
	add("webrtc", "udp", c.WebRTC)
	add("webrtc", "tcp", c.WebRTC)
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkPorts binds each configured address, as camfeed will, and names
// the process that holds one already taken.
func checkPorts(ctx context.Context, m *machine) Result {
	var taken, ours []string
	for _, p := range m.ports() {
		err := m.Bind(p.network, p.addr)
		if err == nil {
			continue
		}
		s := fmt.Sprintf("%s %s/%s: %v", p.what, p.addr, p.network, err)
		if holder := m.portHolder(p); holder != nil {
			s = fmt.Sprintf("%s %s/%s is taken by PID %d (%s)", p.what, p.addr, p.network, holder.pid, holder.comm)
			if m.ofCamfeed(holder) {
				ours = append(ours, s)
				continue
			}
		}
		taken = append(taken, s)
	}
	switch {
	case len(taken) > 0:
		return Result{Level: Fault, Detail: strings.Join(append(taken, ours...), "; ") + m.unreadableNote(),
			Fix: "stop the program that holds the port, or move camfeed elsewhere (--http, --rtsp, --webrtc, rtsp_udp_rtp/rtsp_udp_rtcp, or off); ports below 1024 need root"}
	case len(ours) > 0:
		return Result{Level: Warning, Detail: strings.Join(ours, "; "),
			Fix: "that is fine for the camfeed service; to start another camfeed, stop it first (sudo systemctl stop camfeed) or give the new one other ports"}
	}
	return Result{Level: OK, Detail: fmt.Sprintf("all %d configured addresses are free", len(m.ports()))}
}

// portHolder finds the process whose socket is bound to p's port, from
// /proc/net and the processes' socket fds; nil when unknown.
func (m *machine) portHolder(p port) *process {
	_, ps, err := net.SplitHostPort(p.addr)
	if err != nil {
		return nil
	}
	portNum, err := strconv.Atoi(ps)
	if err != nil {
		return nil
	}
	var inodes []string
	for _, v := range []string{"", "6"} {
		b, err := os.ReadFile(m.path("/proc/net/" + p.network + v))
		if err == nil {
			inodes = append(inodes, ParseNetSockets(string(b), p.network == "tcp")[portNum]...)
		}
	}
	for _, pid := range m.sortedPIDs() {
		proc := m.processes()[pid]
		for _, s := range proc.sockets {
			if slices.Contains(inodes, s) {
				return proc
			}
		}
	}
	return nil
}
