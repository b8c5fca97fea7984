package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// TestQEMU runs camfeed binaries built for the Raspberry Pi under
// qemu-user, end to end: the test pattern starts, /healthz says 200, a
// raw HTTP viewer gets a decodable stream from a keyframe, ffmpeg decodes
// RTSP, and a pion WHEP client from this machine gets video. 32-bit ARM
// is where Go programs break in ways x86 never shows (64-bit atomics,
// int overflow), so the Pi builds must run, not only compile.
//
// CAMFEED_QEMU lists EMULATOR=BINARY pairs, comma-separated, e.g.
// qemu-arm=/tmp/camfeed-armhf,qemu-aarch64=/tmp/camfeed-arm64; .ci/run
// sets it. Without it the test skips.
func TestQEMU(t *testing.T) {
	spec := os.Getenv("CAMFEED_QEMU")
	if spec == "" {
		t.Skip("CAMFEED_QEMU not set (.ci/run sets it to the Pi builds)")
	}
	for _, pair := range strings.Split(spec, ",") {
		emu, bin, ok := strings.Cut(pair, "=")
		if !ok {
			t.Fatalf("CAMFEED_QEMU: %q is not EMULATOR=BINARY", pair)
		}
		t.Run(emu, func(t *testing.T) {
			t.Parallel()
			runUnderQEMU(t, testsupport.NeedTool(t, emu), bin)
		})
	}
}

var (
	httpAddrRE = regexp.MustCompile(`msg="camfeed running".* http=(127\.0\.0\.1:\d+)`)
	rtspAddrRE = regexp.MustCompile(`msg="rtsp: serving".* addr=(127\.0\.0\.1:\d+)`)
)

func runUnderQEMU(t *testing.T, emu, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, emu, bin, "--source", "test", "--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0",
		"--rtsp-transports", "tcp", "--webrtc", "127.0.0.1:0")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	addrs := make(chan [2]string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var httpAddr, rtspAddr string
		sent := false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			logs.WriteString(line + "\n")
			mu.Unlock()
			if m := httpAddrRE.FindStringSubmatch(line); m != nil {
				httpAddr = m[1]
			}
			if m := rtspAddrRE.FindStringSubmatch(line); m != nil {
				rtspAddr = m[1]
			}
			if httpAddr != "" && rtspAddr != "" && !sent {
				addrs <- [2]string{httpAddr, rtspAddr}
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("camfeed under %s:\n%s", emu, logs.String())
		}
	})
	var a [2]string
	select {
	case a = <-addrs:
	case <-done:
		t.Fatal("camfeed exited before it was serving")
	case <-ctx.Done():
		t.Fatal("camfeed was not serving within 2 minutes")
	}
	base := "http://" + a[0]

	testsupport.Eventually(t, "/healthz 200", func() bool {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	// Raw HTTP: a keyframe with SPS/PPS first, gaps only at keyframes,
	// and ffmpeg decodes it.
	res, err := http.Get(base + "/cam/stream.h264")
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	buf := make([]byte, 64<<10)
	for len(testfeed.Units(data)) < 45 {
		n, err := res.Body.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			t.Fatalf("raw HTTP after %d bytes: %v", len(data), err)
		}
	}
	res.Body.Close()
	testfeed.CheckStream(t, "raw HTTP under "+emu, testfeed.Units(data))
	testsupport.DecodeAnnexB(t, data)

	// RTSP, decoded by ffmpeg.
	ffmpeg := testsupport.NeedTool(t, "ffmpeg")
	out, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
		"-i", "rtsp://"+a[1]+"/cam", "-frames:v", "30", "-f", "null", "-").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("ffmpeg over RTSP: %v\n%s", err, out)
	}

	// One WHEP session from this machine.
	if n := whepPackets(t, base+"/cam/whep"); n < 10 {
		t.Errorf("WHEP: %d RTP packets", n)
	}
}

// whepPackets posts a WHEP offer, connects, and counts the RTP packets
// that arrive within 30 s (it stops at 50).
func whepPackets(t *testing.T, url string) int {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := 0
		for n < 50 {
			if _, _, err := tr.ReadRTP(); err != nil {
				break
			}
			n++
		}
		got <- n
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	res, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %d %s", res.StatusCode, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		return n
	case <-time.After(30 * time.Second):
		return 0
	}
}
