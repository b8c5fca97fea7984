package rtsp

import (
	"bufio"
	"fmt"
	"net"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camfeed/camfeed/internal/hub"
)

// announceOnly sends an ANNOUNCE of H.264 to u on a raw connection and
// then nothing; it returns the connection and the response's status line.
func announceOnly(t *testing.T, u string) (net.Conn, string) {
	t.Helper()
	pu, err := neturl.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=idle\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n"
	fmt.Fprintf(c, "ANNOUNCE %s RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", u, len(sdp), sdp)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("ANNOUNCE: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	return c, strings.TrimSpace(line)
}

// TestHostileRTSPIdlePublisher: an ANNOUNCE with nothing after it held
// the feed's publish slot for 60 s, and so did a publisher that recorded
// but sent no video. Now both are dropped after the publish timeout, and
// the real publisher gets in and its video reaches the feed.
func TestHostileRTSPIdlePublisher(t *testing.T) {
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	pubs := &testPublishers{hubs: map[string]*hub.Hub{"pub": h}, busy: map[string]bool{}}
	s, _ := startServer(t, Config{PublishTimeout: 500 * time.Millisecond}, newTestFeeds(map[string]*hub.Hub{"pub": h}), pubs, nil)
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}

	// An ANNOUNCE, then silence.
	idle, status := announceOnly(t, url(s, "pub"))
	defer idle.Close()
	if !strings.Contains(status, " 200 ") {
		t.Fatalf("ANNOUNCE answered %q", status)
	}
	if !pubs.isBusy("pub") {
		t.Fatal("the ANNOUNCE did not claim the feed")
	}
	if _, err := startGoPublisher(t, url(s, "pub"), forma); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("real publisher while the slot is held: %v, want 503", err)
	}
	waitFor(t, "the silent ANNOUNCE to be dropped", 20*time.Second, func() bool { return !pubs.isBusy("pub") })

	// A publisher that records and sends nothing.
	mute, err := startGoPublisher(t, url(s, "pub"), forma)
	if err != nil {
		t.Fatal(err)
	}
	defer mute.c.Close()
	waitFor(t, "the mute publisher to be dropped", 20*time.Second, func() bool { return !pubs.isBusy("pub") })

	// The real publisher.
	var p *goPublisher
	waitFor(t, "the real publisher to get in", 20*time.Second, func() bool {
		p, err = startGoPublisher(t, url(s, "pub"), forma)
		return err == nil
	})
	defer p.c.Close()
	p.send(t, 30, false)
	// All 30 arrive: the publisher was not dropped while it sent.
	waitFor(t, "the real publisher's video", 20*time.Second, func() bool { return h.Stats().Units >= 30 })
}
