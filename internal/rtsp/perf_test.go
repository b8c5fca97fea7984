package rtsp

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// The figures in docs/perf/rtsp.md come from TestPerf:
//
//	CAMFEED_PERF=1 go test -run 'TestPerf$' -v -count=1 -timeout 20m ./internal/rtsp/
//
// It serves a 2 Mbit/s, 30 fps test pattern to 0, 1, 10 and 100 TCP
// readers that run in a child process (this test binary again, as
// TestPerfReaders), so that the CPU time and RSS measured are the
// server's alone. The test pattern's generator runs in the server process:
// the 0-reader row is its cost, and the others are measured against it.

const perfEnv = "CAMFEED_PERF"

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// TestPerfReaders is the child process of TestPerf: it opens the number
// of TCP readers it is told, counts what they get, and reports when
// stdin closes.
func TestPerfReaders(t *testing.T) {
	u, n := os.Getenv(perfEnv+"_URL"), os.Getenv(perfEnv+"_READERS")
	if u == "" {
		t.Skip("child process of TestPerf")
	}
	count, _ := strconv.Atoi(n)
	var bytes atomic.Int64
	var clients []*gortsplib.Client
	for range count {
		pu, _ := base.ParseURL(u)
		proto := gortsplib.ProtocolTCP
		c := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		desc, _, err := c.Describe(pu)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
			t.Fatal(err)
		}
		c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, pkt *rtp.Packet) {
			bytes.Add(int64(len(pkt.Payload)))
		})
		if _, err := c.Play(nil); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Println("bytes", bytes.Load())
	for _, c := range clients {
		c.Close()
	}
}

func TestPerf(t *testing.T) {
	if os.Getenv(perfEnv) == "" {
		t.Skip("set " + perfEnv + "=1 to measure; see docs/perf/rtsp.md")
	}
	const window = 20 * time.Second
	cfg := testsrc.Config{Width: 1280, Height: 720, FPS: 30, Intra: 60}
	h, _ := newFeed(t, cfg, hub.Config{})
	waitKeyframe(t, h)
	time.Sleep(3 * time.Second)
	st := h.Stats()
	t.Logf("feed: %dx%d, %.0f fps, %.2f Mbit/s, GOP %d", cfg.Width, cfg.Height, st.FPS, st.Bitrate/1e6, st.GOP)

	var mu sync.Mutex
	var lat []time.Duration
	s := New(Config{Addr: "127.0.0.1:0", Transports: []string{TransportTCP}}, door.Unlimited(newTestFeeds(map[string]*hub.Hub{"cam": h})), nil, nil, nil)
	s.onSent = func(received, sentAt time.Time) {
		mu.Lock()
		lat = append(lat, sentAt.Sub(received))
		mu.Unlock()
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Join time: PLAY to the first keyframe, 20 joins spread over the GOP.
	var joins []time.Duration
	for range 20 {
		r, err := openReader(url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
		if err != nil {
			t.Fatal(err)
		}
		first := r.waitUnits(t, 1, 3*testsupport.Patience)[0]
		joins = append(joins, first.arrival.Sub(r.playAt))
		r.close()
		time.Sleep(170 * time.Millisecond)
	}
	t.Logf("join (PLAY sent to first keyframe received, 20 joins): p50 %v, max %v", median(joins).Round(10*time.Microsecond), slices.Max(joins).Round(10*time.Microsecond))

	var base time.Duration
	for _, n := range []int{0, 1, 10, 100} {
		child := exec.Command(os.Args[0], "-test.run=^TestPerfReaders$", "-test.v")
		child.Env = append(os.Environ(), perfEnv+"_URL="+url(s, "cam"), perfEnv+"_READERS="+strconv.Itoa(n))
		stdin, _ := child.StdinPipe()
		stdout, _ := child.StdoutPipe()
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewReader(stdout)
		for {
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("reader process: %v", err)
			}
			if strings.TrimSpace(line) == "ready" {
				break
			}
		}
		time.Sleep(2 * time.Second) // settle
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		if p := os.Getenv(perfEnv + "_PROFILE"); p != "" && n == 100 {
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
		}
		c0, w0 := cpuTime(), time.Now()
		var peak int
		ctx, cancel := context.WithTimeout(context.Background(), window)
		for ctx.Err() == nil {
			peak = max(peak, rssKB())
			time.Sleep(500 * time.Millisecond)
		}
		cancel()
		if os.Getenv(perfEnv+"_PROFILE") != "" && n == 100 {
			pprof.StopCPUProfile()
		}
		cpu := float64(cpuTime()-c0) / float64(time.Since(w0)) * 100
		mu.Lock()
		l := slices.Clone(lat)
		mu.Unlock()
		stdin.Close()
		var got string
		for {
			line, err := out.ReadString('\n')
			if strings.HasPrefix(line, "bytes") {
				got = strings.TrimSpace(line)
			}
			if err != nil {
				break
			}
		}
		_ = child.Wait()
		if n == 0 {
			base = time.Duration(cpu * float64(time.Millisecond))
			t.Logf("readers   0: CPU %5.1f%% of a core (the test pattern generator), RSS %d MB", cpu, peak>>10)
			continue
		}
		t.Logf("readers %3d: CPU %5.1f%% of a core (%+.1f%% over none), RSS %d MB, ingest-to-send p50 %v p99 %v (%d units), readers got %s",
			n, cpu, cpu-float64(base)/float64(time.Millisecond), peak>>10,
			median(l).Round(10*time.Microsecond), percentile(l, 0.99).Round(10*time.Microsecond), len(l), got)
	}
}
