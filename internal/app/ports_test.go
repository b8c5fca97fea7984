package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/source"
)

// TestEveryTakenPortNamedAtOnce: with ports already taken on 127.0.0.1,
// Run fails with one error that names each of them with the flag that
// moves it, and says each address once.
func TestEveryTakenPortNamedAtOnce(t *testing.T) {
	t.Parallel()
	httpAddr, tcpAddr := take(t, "tcp"), take(t, "tcp")
	rtpAddr, webrtcAddr := take(t, "udp"), take(t, "udp")

	cfg := config.Default()
	cfg.Feeds[config.DefaultFeed].Source = "test"
	cfg.HTTP, cfg.TCP = httpAddr, tcpAddr
	cfg.RTSP = "127.0.0.1:0"
	cfg.RTSPUDPRTP, cfg.RTSPUDPRTCP = rtpAddr, "127.0.0.1:0"
	cfg.WebRTC = webrtcAddr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background())
	if !errors.Is(err, ErrPortsTaken) {
		t.Fatalf("Run: %v; want ErrPortsTaken", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []struct{ addr, flag string }{
		{httpAddr + "/tcp", "--http"},
		{tcpAddr + "/tcp", "--tcp"},
		{rtpAddr + "/udp", "--rtsp-udp-rtp"},
		{webrtcAddr + "/udp", "--webrtc"},
	} {
		i := strings.Index(msg, want.addr)
		if i < 0 {
			t.Errorf("%s is not named", want.addr)
			continue
		}
		if strings.Count(msg, want.addr) != 1 {
			t.Errorf("%s is named more than once", want.addr)
		}
		if rest := msg[i:]; !strings.Contains(strings.SplitN(rest, ";", 2)[0], want.flag) {
			t.Errorf("%s: no %s beside it", want.addr, want.flag)
		}
	}
	if !strings.Contains(msg, "4 ports") {
		t.Errorf("want 4 ports counted: %s", msg)
	}
}

// TestRTSPUDPFollowsRTSP: moving --rtsp moves the UDP pair with it when
// the pair is not set, so a second camfeed needs no more flags.
func TestRTSPUDPFollowsRTSP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rtsp, rtp, rtcp, wantRTP, wantRTCP string }{
		{":8554", "", "", "", ""},
		{":9554", "", "", ":9556", ":9557"},
		{"127.0.0.1:8555", "", "", "127.0.0.1:8556", "127.0.0.1:8557"},
		{":9554", ":7000", ":7001", ":7000", ":7001"},
		{"127.0.0.1:0", "", "", "", ""},
	} {
		c := config.Default()
		c.RTSP, c.RTSPUDPRTP, c.RTSPUDPRTCP = tc.rtsp, tc.rtp, tc.rtcp
		rtp, rtcp, _ := c.RTSPUDP()
		if rtp != tc.wantRTP || rtcp != tc.wantRTCP {
			t.Errorf("rtsp %s: udp %q %q; want %q %q", tc.rtsp, rtp, rtcp, tc.wantRTP, tc.wantRTCP)
		}
	}
}

// take holds a port on 127.0.0.1 until the test ends and returns it.
func take(t *testing.T, network string) string {
	t.Helper()
	var c io.Closer
	var addr net.Addr
	if network == "udp" {
		pc, err := net.ListenPacket(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, addr = pc, pc.LocalAddr()
	} else {
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, addr = ln, ln.Addr()
	}
	t.Cleanup(func() { c.Close() })
	return addr.String()
}

// TestTestPatternSizeCheckedAtStart: source auto on a machine without a
// camera serves the test pattern; a size the pattern cannot make is an
// error at start, not a source that restarts forever.
func TestTestPatternSizeCheckedAtStart(t *testing.T) {
	t.Parallel()
	if _, err := source.FindCameraTool(); err == nil {
		t.Skip("a camera tool is installed: auto means the camera here")
	}
	cfg := config.Default()
	cfg.Feeds[config.DefaultFeed].Width, cfg.Feeds[config.DefaultFeed].Height = 641, 480
	if err := cfg.Validate(); err != nil {
		t.Fatal(err) // auto may be a camera, which takes 641
	}
	_, err := New(cfg, "test", slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "width 641 is not a multiple of 16") {
		t.Fatalf("New: %v", err)
	}
}

// TestListenFailedNamesThePortOnce: a port taken between the check and
// the start (here: the error an output gives) is named once, with its
// flag, not as "listen udp X: listen udp X".
func TestListenFailedNamesThePortOnce(t *testing.T) {
	t.Parallel()
	addr := take(t, "udp")
	cfg := config.Default()
	cfg.Feeds[config.DefaultFeed].Source = "test"
	cfg.HTTP, cfg.RTSP, cfg.WebRTC = "off", "127.0.0.1:0", "127.0.0.1:0"
	cfg.RTSPUDPRTP, cfg.RTSPUDPRTCP = addr, "127.0.0.1:0"
	a, err := New(cfg, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, lerr := net.ListenPacket("udp", addr)
	if lerr == nil {
		t.Fatal("the port is not taken")
	}
	// As the RTSP server reports it: its own address, then the UDP one.
	err = a.listenFailed(fmt.Errorf("rtsp on %s: rtsp: listen on %[1]s: %w", cfg.RTSP, lerr))
	if !errors.Is(err, ErrPortsTaken) || strings.Count(err.Error(), addr) != 1 || !strings.Contains(err.Error(), "--rtsp-udp-rtp") {
		t.Errorf("got %v", err)
	}
	t.Log(err)
}
