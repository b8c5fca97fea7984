// Command camfeed-bench measures what camfeed costs per viewer: it builds
// and starts camfeed as its own process on a generated test pattern,
// attaches N viewers of one protocol with real client code, and prints
// the server's CPU (% of one core, from /proc/PID/stat utime+stime), its
// memory (VmRSS, VmHWM, and RSS less the pre-roll's own bytes) and the
// viewers' latency from capture to arrival, read from the capture time
// code SEI (docs/TIMECODE.md).
//
// Every figure in docs/PERFORMANCE.md comes from this tool; the command
// is given beside each table. Loopback only; every run is bounded and
// stops by itself.
//
//	go run ./cmd/camfeed-bench -protocols http,rtsp-tcp -viewers 100 -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	bin        string
	protocols  []string
	viewers    map[string]int
	runs       int
	warmup     time.Duration
	duration   time.Duration
	width      int
	height     int
	fps        int
	bitrate    int
	gop        int
	churn      time.Duration
	profileDir string
	extraArgs  []string
	verbose    bool
}

// defaultViewers are the issue 11 targets: 100 viewers of the stream
// protocols, 20 of the browser ones.
var defaultViewers = map[string]int{
	"http": 100, "tcp": 100, "rtsp-tcp": 100, "rtsp-udp": 100, "rtsp-udp-gro": 100, "mse": 20, "webrtc": 20,
}

// allProtocols are measured by default; rtsp-udp-gro (RTSP over UDP to
// sockets with UDP_GRO, see gro_linux.go) on request.
var (
	allProtocols   = []string{"http", "tcp", "rtsp-tcp", "rtsp-udp", "mse", "webrtc"}
	validProtocols = append(slices.Clone(allProtocols), "rtsp-udp-gro")
)

func main() {
	var o options
	protos := flag.String("protocols", strings.Join(allProtocols, ","), "protocols to measure, comma-separated: "+strings.Join(validProtocols, ", "))
	viewers := flag.String("viewers", "", "viewers per protocol: one number for all, or proto=N,... (default http/tcp/rtsp 100, mse/webrtc 20)")
	flag.StringVar(&o.bin, "bin", "", "camfeed binary to measure (default: go build ./cmd/camfeed into a temporary directory)")
	flag.IntVar(&o.runs, "runs", 3, "runs per protocol; the table shows each and the median")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "time after the viewers joined before measuring")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "measuring time per run")
	flag.IntVar(&o.width, "width", 640, "test pattern width")
	flag.IntVar(&o.height, "height", 480, "test pattern height")
	flag.IntVar(&o.fps, "fps", 30, "frames per second")
	flag.IntVar(&o.bitrate, "bitrate", 2_000_000, "bits per second (the pattern is padded up to it with an SEI)")
	flag.IntVar(&o.gop, "gop", 30, "keyframe period in frames")
	flag.DurationVar(&o.churn, "churn", 0, "if set, each viewer leaves and a new one joins after a random time up to this (memory flatness runs)")
	flag.StringVar(&o.profileDir, "pprof", "", "directory to save a CPU profile and a heap profile of each run to (turns camfeed's debug: true on)")
	flag.BoolVar(&o.verbose, "v", false, "show camfeed's log")
	flag.Parse()
	o.extraArgs = flag.Args()
	o.protocols = strings.Split(*protos, ",")
	for _, p := range o.protocols {
		if !slices.Contains(validProtocols, p) {
			fatalf("unknown protocol %q (want %s)", p, strings.Join(validProtocols, ", "))
		}
	}
	o.viewers = map[string]int{}
	for k, v := range defaultViewers {
		o.viewers[k] = v
	}
	if *viewers != "" {
		if n, err := strconv.Atoi(*viewers); err == nil {
			for k := range o.viewers {
				o.viewers[k] = n
			}
		} else {
			for _, kv := range strings.Split(*viewers, ",") {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.Atoi(v)
				if !ok || err != nil {
					fatalf("-viewers: %q is not proto=N", kv)
				}
				o.viewers[k] = n
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.bin == "" {
		bin, cleanup, err := build()
		if err != nil {
			fatalf("%v", err)
		}
		defer cleanup()
		o.bin = bin
	}
	fmt.Printf("camfeed-bench: %dx%d %d fps, %.1f Mbit/s, GOP %d; %d run(s) of %v after %v warm-up; load average %s\n",
		o.width, o.height, o.fps, float64(o.bitrate)/1e6, o.gop, o.runs, o.duration, o.warmup, loadavg())
	for _, p := range o.protocols {
		var rs []result
		for i := range o.runs {
			r, err := runOnce(ctx, o, p, i)
			if err != nil {
				fatalf("%s run %d: %v", p, i+1, err)
			}
			rs = append(rs, r)
		}
		printTable(p, rs)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "camfeed-bench: "+format+"\n", args...)
	os.Exit(1)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
