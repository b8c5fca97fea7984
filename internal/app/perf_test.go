package app

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestPerfLoopback measures ingest-to-viewer latency, CPU and memory of a
// separate camfeed process serving a 2 Mbps, 30 fps stream (ffmpeg
// libx264) to 1, 10 and 100 HTTP viewers on loopback. It is a
// measurement, not a check: run it with
//
//	CAMFEED_PERF=1 go test -run TestPerfLoopback -v ./internal/app/
//
// and copy the table into docs/PERFORMANCE.md.
func TestPerfLoopback(t *testing.T) {
	if os.Getenv("CAMFEED_PERF") == "" {
		t.Skip("set CAMFEED_PERF=1 to measure")
	}
	testsupport.NeedTool(t, "ffmpeg")
	bin := filepath.Join(t.TempDir(), "camfeed")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/camfeed").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	src := "exec:ffmpeg -v error -re -f lavfi -i testsrc2=size=1280x720:rate=30 -c:v libx264 -preset ultrafast -tune zerolatency " +
		"-b:v 2M -maxrate 2M -bufsize 500k -g 30 -bsf:v h264_metadata=aud=insert -f h264 -"
	cmd := exec.Command(bin, "--http", addr, "--rtsp", "off", "--webrtc", "off", "--source", src, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	time.Sleep(3 * time.Second)
	t.Logf("| viewers | latency p50 | p99 | max | camfeed CPU (of one core) | RSS |")
	t.Logf("|---|---|---|---|---|---|")
	for _, n := range []int{1, 10, 100} {
		const dur = 10 * time.Second
		var wg sync.WaitGroup
		recs := make([]*recorder, n)
		ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Second)
		for i := range n {
			recs[i] = &recorder{discard: true}
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/stream.h264", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				readFor(resp.Body, dur, recs[i])
			})
		}
		time.Sleep(time.Second) // joins settle
		cpu0, wall0 := cpuTicks(t, cmd.Process.Pid), time.Now()
		wg.Wait()
		cpu1, wall1 := cpuTicks(t, cmd.Process.Pid), time.Now()
		cancel()
		var lat []time.Duration
		for _, r := range recs {
			l := r.latencies()
			if len(l) > 1 {
				lat = append(lat, l[1:]...)
			}
		}
		cpu := float64(cpu1-cpu0) / 100 / wall1.Sub(wall0).Seconds() * 100
		t.Logf("| %d | %v | %v | %v | %.1f%% | %d MiB |", n, percentile(lat, 0.5).Round(10*time.Microsecond),
			percentile(lat, 0.99).Round(10*time.Microsecond), percentile(lat, 1).Round(10*time.Microsecond), cpu, rssKiB(t, cmd.Process.Pid)/1024)
	}
}

// cpuTicks is utime+stime of a process, in clock ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssKiB(t *testing.T, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}
