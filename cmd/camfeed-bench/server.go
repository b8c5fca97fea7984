package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/doctor"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// build compiles camfeed into a temporary directory.
func build() (string, func(), error) {
	dir, err := os.MkdirTemp("", "camfeed-bench")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "camfeed")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/camfeed")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build ./cmd/camfeed (run from the repository root): %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// server is one camfeed process.
type server struct {
	cmd    *exec.Cmd
	dir    string
	http   string // host:port
	tcp    string
	rtsp   string
	in     *os.File
	cancel context.CancelFunc
	genErr chan error
}

// freePort returns a loopback port free for both TCP and UDP right now.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// startServer starts camfeed with the bench's config, its default feed
// reading the pattern from a FIFO.
func startServer(ctx context.Context, o options) (*server, error) {
	dir, err := os.MkdirTemp("", "camfeed-bench-run")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, genErr: make(chan error, 1)}
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	// The pattern reaches camfeed through a FIFO, as from an encoder
	// process: one write per access unit, read by camfeed's byte-stream
	// ingest (pause detector and parser included in its CPU).
	fifo := filepath.Join(dir, "in.h264")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, err
	}
	s.http = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.tcp = fmt.Sprintf("127.0.0.1:%d", ports[1])
	s.rtsp = fmt.Sprintf("127.0.0.1:%d", ports[2])
	// The viewer limits are raised far above what is measured; the
	// pre-roll is the default 30 s, so RSS holds it as in service.
	conf := fmt.Sprintf(`log_level: warn
http: %q
tcp: %q
rtsp: %q
rtsp_udp_rtp: "127.0.0.1:0"
webrtc: "127.0.0.1:%d"
limits:
  max_viewers: 10000
  max_viewers_per_feed: 10000
  max_viewers_per_ip: 10000
feeds:
  cam:
    source: "file:%s"
`, s.http, s.tcp, s.rtsp, ports[3], fifo)
	if o.profileDir != "" {
		// The profiler is for admins; viewers stay anonymous.
		conf = "debug: true\nanonymous_read: true\nusers:\n  - name: bench\n    password: plain:bench\n    permissions: [read, admin]\n" + conf
	}
	path := filepath.Join(dir, "camfeed.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(o.bin, append([]string{"--config", path}, o.extraArgs...)...)
	if o.verbose {
		s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	gctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	go func() {
		// Opening the write end waits for camfeed to open the read end.
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			s.genErr <- err
			return
		}
		s.in = w
		stop := context.AfterFunc(gctx, func() { w.Close() })
		defer stop()
		s.genErr <- generate(gctx, o, w)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := s.status()
		if err == nil && st.Frames > 0 && st.Keyframes > 0 {
			if o.verbose {
				fmt.Fprintf(os.Stderr, "camfeed-bench: camfeed pid %d, http %s, rtsp %s, tcp %s\n", s.pid(), s.http, s.rtsp, s.tcp)
			}
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("camfeed did not start serving video within 15 s (status: %+v, %v)", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	s.cancel()
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}

// feedStatus is the part of /api/v1/status the bench reads.
type feedStatus struct {
	Frames    uint64  `json:"frames"`
	Keyframes uint64  `json:"keyframes"`
	Bitrate   float64 `json:"bitrate"`
	Skips     uint64  `json:"skips"`
	Viewers   map[string]int
	Buffer    struct {
		Bytes int `json:"bytes"`
	} `json:"buffer"`
}

func (s *server) status() (feedStatus, error) {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + s.http + "/api/v1/status")
	if err != nil {
		return feedStatus{}, err
	}
	defer res.Body.Close()
	var body struct {
		Feeds []feedStatus `json:"feeds"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return feedStatus{}, err
	}
	if len(body.Feeds) == 0 {
		return feedStatus{}, errors.New("no feed in status")
	}
	return body.Feeds[0], nil
}

// profile saves a CPU profile over d and then a heap profile, also as text
// with the runtime's memory statistics.
func (s *server) profile(dir, name string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	get := func(path, file string, timeout time.Duration) error {
		c := http.Client{Timeout: timeout}
		res, err := c.Get("http://bench:bench@" + s.http + path)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(res.Body)
			return fmt.Errorf("%s: %s: %s", path, res.Status, bytes.TrimSpace(b))
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, res.Body)
		return err
	}
	secs := int(d / time.Second)
	if err := get("/debug/pprof/profile?seconds="+strconv.Itoa(secs), name+".cpu.pprof", d+30*time.Second); err != nil {
		return err
	}
	if err := get("/debug/pprof/heap", name+".heap.pprof", 30*time.Second); err != nil {
		return err
	}
	return get("/debug/pprof/heap?debug=1", name+".heap.txt", 30*time.Second) // with runtime.MemStats
}

// cpuTicks returns the process's utime+stime in clock ticks (1/100 s).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

// memory returns VmRSS and VmHWM in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	m := doctor.ParseMeminfo(string(b))
	return m["VmRSS"], m["VmHWM"], nil
}

// padUUID marks the SEI that pads the pattern up to the chosen bitrate.
var padUUID = []byte("camfeedbenchpad0")

// generate writes the test pattern to w as an encoder would: one write
// per access unit, in real time. Each unit carries the pattern's capture
// time code; an SEI pads the stream to o.bitrate on average (the pattern
// alone is about 1.3 Mbit/s at 640x480).
func generate(ctx context.Context, o options, w io.Writer) error {
	g, err := testsrc.New(testsrc.Config{Width: o.width, Height: o.height, FPS: o.fps, Intra: o.gop})
	if err != nil {
		return err
	}
	perFrame := float64(o.bitrate) / 8 / float64(o.fps)
	credit := 0.0
	var buf []byte
	return g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
		buf = buf[:0]
		size := 0
		for _, n := range nalus {
			size += 4 + len(n)
		}
		credit += perFrame - float64(size)
		pad := 0
		if credit > 64 {
			pad = int(credit) - 40
			credit -= float64(pad + 40)
		}
		for _, n := range nalus {
			if pad > 0 && h264.TypeOf(n).IsVCL() {
				buf = appendPadSEI(buf, pad)
				pad = 0
			}
			buf = append(buf, 0, 0, 0, 1)
			buf = append(buf, n...)
		}
		_, err := w.Write(buf)
		return err
	})
}

// appendPadSEI appends an SEI NAL unit (start code included) with one
// user_data_unregistered message of n bytes. The payload bytes are never
// zero, so no emulation prevention is needed.
func appendPadSEI(b []byte, n int) []byte {
	b = append(b, 0, 0, 0, 1, byte(h264.NALUTypeSEI), 5)
	size := len(padUUID) + n
	for ; size >= 255; size -= 255 {
		b = append(b, 0xff)
	}
	b = append(b, byte(size))
	b = append(b, padUUID...)
	for range n {
		b = append(b, 0xaa)
	}
	return append(b, 0x80)
}
