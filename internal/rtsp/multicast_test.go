package rtsp

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// freeUDPPair finds an even UDP port whose next port is free too, for the
// multicast group (which clients must be told, so port 0 cannot do).
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		a, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if p%2 != 0 || p >= 65534 {
			continue
		}
		b, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p+1))
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// TestMulticast plays the feed over UDP multicast with two ffmpeg
// clients at once, which share one group and so one sender (one hub
// viewer). gortsplib's own client joins the group on the interface of its
// RTSP connection, which is the loopback here and cannot do multicast;
// ffmpeg joins on the default route's. Where multicast cannot be routed
// at all the test skips.
func TestMulticast(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	port := freeUDPPair(t)
	s, _ := startServer(t, Config{
		Transports:       []string{TransportMulticast, TransportTCP},
		MulticastIPRange: "239.255.77.0/24", MulticastRTPPort: port, MulticastRTCPPort: port + 1,
	}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)

	var mu sync.Mutex
	var maxSessions, maxViewers int
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n, v := len(s.Sessions("cam")), h.Stats().Viewers["rtsp"]
			mu.Lock()
			maxSessions, maxViewers = max(maxSessions, n), max(maxViewers, v)
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp_multicast",
				"-i", url(s, "cam"), "-frames:v", "60", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-")
		}()
	}
	wg.Wait()
	close(stop)
	<-polled
	for i := range 2 {
		if errs[i] != nil && strings.Contains(outs[i], "timeout") {
			t.Skipf("no multicast here: %v %s", errs[i], outs[i])
		}
		if errs[i] != nil || strings.TrimSpace(outs[i]) != "" {
			t.Errorf("ffmpeg over multicast: %v\n%s", errs[i], outs[i])
		}
	}
	if maxSessions != 2 || maxViewers != 1 {
		t.Errorf("%d multicast sessions on %d hub viewers at most, want 2 on 1", maxSessions, maxViewers)
	}
	waitFor(t, "the multicast sender to stop", 3*testsupport.Patience, func() bool { return h.Stats().Viewers["rtsp"] == 0 })
}
