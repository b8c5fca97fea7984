package webrtc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestPerfViewers measures the server's CPU per WebRTC viewer of a
// 2 Mbit/s, 30 fps feed. The viewers are pion clients in a child process,
// so their CPU is not counted. Run it with
//
//	CAMFEED_PERF=0,10,25,50 go test -run TestPerfViewers -v ./internal/webrtc
func TestPerfViewers(t *testing.T) {
	list := os.Getenv("CAMFEED_PERF")
	if list == "" {
		t.Skip("set CAMFEED_PERF=0,10,25 to measure")
	}
	g, _ := testsrc.New(testsrc.Config{})
	h := hub.New(hub.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 2 Mbit/s at 30 fps, a keyframe a second
		defer wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				key := i%30 == 0
				size := (2_000_000/8 - benchKey) / 29
				if key {
					size = benchKey
				}
				h.Publish(syntheticAU(size, key, g.SPS(), g.PPS(), now))
			}
		}
	}()
	defer func() { cancel(); wg.Wait(); h.Close() }()
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(testfeed.Feeds{"cam": h}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := testsupport.Serve(t, s.Register)
	time.Sleep(2 * time.Second)

	var idle float64
	for _, f := range strings.Split(list, ",") {
		n, _ := strconv.Atoi(f)
		const warm, span = 6 * time.Second, 10 * time.Second
		cmd := exec.Command(os.Args[0], "-test.run=^TestPerfClients$", "-test.v")
		cmd.Env = append(os.Environ(), "CAMFEED_PERF_URL="+base+"/cam/whep", "CAMFEED_PERF_N="+f,
			"CAMFEED_PERF_SECONDS="+strconv.Itoa(int((warm+span+2*time.Second)/time.Second)))
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		done := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			close(done)
		}()
		time.Sleep(warm)
		c0, t0 := cpuTime(), time.Now()
		time.Sleep(span)
		cpu := float64(cpuTime()-c0) / float64(time.Since(t0))
		st := s.Stats()
		_ = cmd.Wait()
		<-done
		if n == 0 {
			idle = cpu
		}
		per := 0.0
		if n > 0 {
			per = (cpu - idle) / float64(n)
		}
		t.Logf("viewers %d (connected %d, keyframes-only %d): server CPU %.1f%% of a core; %.2f%% per viewer beyond the feed alone; one core ≈ %.0f viewers",
			n, st.Viewers, st.KeyframeOnly, 100*cpu, 100*per, func() float64 {
				if per <= 0 {
					return 0
				}
				return (1 - idle) / per
			}())
		for _, l := range lines {
			if strings.Contains(l, "clients:") {
				t.Log(strings.TrimSpace(l))
			}
		}
	}
}

// TestPerfClients is the child process of TestPerfViewers.
func TestPerfClients(t *testing.T) {
	url := os.Getenv("CAMFEED_PERF_URL")
	if url == "" {
		t.Skip("child of TestPerfViewers")
	}
	n, _ := strconv.Atoi(os.Getenv("CAMFEED_PERF_N"))
	secs, _ := strconv.Atoi(os.Getenv("CAMFEED_PERF_SECONDS"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	var cls []*client
	for i := 0; i < n; i++ {
		c, err := dialWHEP(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		cls = append(cls, c)
	}
	time.Sleep(time.Duration(secs) * time.Second / 3)
	b0 := make([]uint64, n)
	for i, c := range cls {
		b0[i] = c.bytes.Load()
	}
	t0 := time.Now()
	time.Sleep(time.Duration(secs) * time.Second / 2)
	lo, hi := 1e18, 0.0
	for i, c := range cls {
		r := float64(c.bytes.Load()-b0[i]) * 8 / time.Since(t0).Seconds()
		lo, hi = min(lo, r), max(hi, r)
	}
	if n > 0 {
		fmt.Printf("clients: %d, each received %.2f..%.2f Mbit/s of payload\n", n, lo/1e6, hi/1e6)
	}
	time.Sleep(time.Duration(secs)*time.Second - time.Since(t0) - time.Duration(secs)*time.Second/3)
	for _, c := range cls {
		_ = c.hangUp()
	}
}
