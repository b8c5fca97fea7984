package webrtc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// client is a pion WHEP viewer on loopback that counts what it gets.
type client struct {
	pc       *webrtc.PeerConnection
	resource string
	answer   string
	packets  atomic.Uint64
	bytes    atomic.Uint64
	frames   atomic.Uint64 // marker bits
}

func dialWHEP(ctx context.Context, url string) (*client, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	c := &client{pc: pc}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			c.packets.Add(1)
			c.bytes.Add(uint64(len(p.Payload)))
			if p.Marker {
				c.frames.Add(1)
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	<-gathered
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		pc.Close()
		return nil, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		pc.Close()
		return nil, fmt.Errorf("WHEP: %s: %s", res.Status, bytes.TrimSpace(body))
	}
	c.answer = string(body)
	loc, err := res.Location()
	if err != nil {
		pc.Close()
		return nil, err
	}
	c.resource = loc.String()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: c.answer}); err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

func (c *client) hangUp() error {
	req, _ := http.NewRequest("DELETE", c.resource, nil)
	res, err := http.DefaultClient.Do(req)
	c.pc.Close()
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE: %s", res.Status)
	}
	return nil
}

func TestWHEP(t *testing.T) {
	feed := testfeed.Start(t, testsrc.Config{Width: 320, Height: 240}, hub.Config{})
	feeds := testfeed.Feeds{"cam": feed.Hub}
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(feeds), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := testsupport.Serve(t, s.Register)

	for _, c := range []struct {
		path, ctype string
		want        int
	}{
		{"/nope/whep", "application/sdp", http.StatusNotFound},
		{"/cam/whep", "text/plain", http.StatusUnsupportedMediaType},
		{"/cam/whep", "application/sdp", http.StatusBadRequest}, // not an offer
	} {
		res, err := http.Post(base+c.path, c.ctype, strings.NewReader("v=0"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("POST %s (%s): %s, want %d", c.path, c.ctype, res.Status, c.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 6*testsupport.Patience)
	defer cancel()
	cl, err := dialWHEP(ctx, base+"/cam/whep")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cl.answer, "H264/90000") || !strings.Contains(cl.answer, "packetization-mode=1") ||
		strings.Contains(cl.answer, "VP8") || strings.Contains(cl.answer, "packetization-mode=0") {
		t.Errorf("the answer must offer only H.264 packetization-mode=1:\n%s", cl.answer)
	}
	if !strings.Contains(cl.answer, "typ host") || !strings.Contains(cl.answer, "tcptype passive") {
		t.Errorf("the answer lacks a UDP or an ICE-TCP host candidate:\n%s", cl.answer)
	}
	deadline := time.Now().Add(3 * testsupport.Patience)
	for cl.frames.Load() < 30 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := cl.frames.Load(); n < 30 {
		t.Fatalf("got %d frames in %v", n, 3*testsupport.Patience)
	}
	if st := s.Stats(); st.Viewers != 1 || st.Broadcasters != 1 {
		t.Errorf("stats %+v with one viewer", st)
	}
	if err := cl.hangUp(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(testsupport.Patience)
	for s.Stats().Viewers != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.Viewers != 0 || st.Broadcasters != 0 {
		t.Errorf("stats %+v after hang-up", st)
	}
	res, err := http.DefaultClient.Do(must(http.NewRequest("DELETE", cl.resource, nil)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %s, want 404", res.Status)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestStartSamePort checks that ICE gets the same port number on UDP and
// TCP, and that a bad host IP is refused.
func TestStartSamePort(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, door.Unlimited(testfeed.Feeds{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if u, tc := s.udp.LocalAddr().String(), s.tcp.Addr().String(); u != tc {
		t.Errorf("UDP on %s, TCP on %s", u, tc)
	}
	if _, err := New(Config{HostIPs: []string{"camera.local"}}, door.Unlimited(testfeed.Feeds{}), nil); err == nil {
		t.Error("a host name was taken as a host IP")
	}
	off, _ := New(Config{Addr: "off"}, door.Unlimited(testfeed.Feeds{}), nil)
	if err := off.Start(); err != ErrDisabled {
		t.Errorf("Start with off: %v", err)
	}
	off.Close()
}
