package rtsp

import (
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/ntp"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestSenderReports: a viewer's RTCP sender reports count what it was
// sent, all along (gortsplib's stopped counting at the first picture,
// after which viewers write their own packets), and carry its clock:
// the RTP time of the report is that of the newest packet, moved on by
// the time since, and the NTP time is the wall clock.
func TestSenderReports(t *testing.T) {
	for _, proto := range []gortsplib.Protocol{gortsplib.ProtocolTCP, gortsplib.ProtocolUDP} {
		t.Run(proto.String(), func(t *testing.T) {
			h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
			waitKeyframe(t, h)
			s, _ := startServer(t, Config{senderReportPeriod: 300 * time.Millisecond}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
			sr := readReports(t, url(s, "cam"), proto, 4)
			for i, r := range sr {
				t.Logf("report %d: %d packets, %d octets; %d and %d received before it", i, r.sr.PacketCount, r.sr.OctetCount, r.packets, r.octets)
				if r.sr.SSRC != r.ssrc {
					t.Errorf("report %d: SSRC %x, the packets' is %x", i, r.sr.SSRC, r.ssrc)
				}
				if i > 0 && r.sr.PacketCount <= sr[i-1].sr.PacketCount {
					t.Errorf("report %d counts %d packets, the one before %d", i, r.sr.PacketCount, sr[i-1].sr.PacketCount)
				}
				if proto == gortsplib.ProtocolTCP {
					// One connection, read in order: every packet counted
					// came before the report, and every packet that came
					// before the one before was counted.
					if uint64(r.sr.PacketCount) > r.packets || uint64(r.sr.OctetCount) > r.octets {
						t.Errorf("report %d counts %d packets and %d octets; %d and %d came before it", i, r.sr.PacketCount, r.sr.OctetCount, r.packets, r.octets)
					}
					if i > 0 && uint64(r.sr.PacketCount) < sr[i-1].packets {
						t.Errorf("report %d counts %d packets; %d had come before the one before", i, r.sr.PacketCount, sr[i-1].packets)
					}
				}
				// The newest packet's timestamp, moved on by the time since
				// it came, give or take how much later the report came than
				// the packet (a frame is 33 ms; a frozen or stray clock is
				// off by much more).
				want := r.lastTS + uint32(ticks(r.at.Sub(r.lastAt)))
				if d := int32(r.sr.RTPTime - want); d < -clockRate || d > clockRate {
					t.Errorf("report %d: RTP time %d, %.3f s from the newest packet's clock", i, r.sr.RTPTime, float64(d)/clockRate)
				}
				if d := ntp.Decode(r.sr.NTPTime).Sub(r.at); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("report %d: NTP time %v from its arrival", i, d)
				}
			}
		})
	}
}

// report is a sender report as a client got it, with what it had got
// before it.
type report struct {
	sr              *rtcp.SenderReport
	at              time.Time
	packets, octets uint64
	ssrc, lastTS    uint32
	lastAt          time.Time
}

// readReports plays u over proto until n sender reports came.
func readReports(t *testing.T, u string, proto gortsplib.Protocol, n int) []report {
	t.Helper()
	pu, err := base.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(pu)
	if err != nil {
		t.Fatal(err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatal("no H.264")
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		cur  report
		got  []report
		done = make(chan struct{})
	)
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		cur.packets++
		cur.octets += uint64(len(pkt.Payload))
		cur.ssrc, cur.lastTS, cur.lastAt = pkt.SSRC, pkt.Timestamp, time.Now()
	})
	c.OnPacketRTCP(medi, func(pkt rtcp.Packet) {
		sr, ok := pkt.(*rtcp.SenderReport)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) == n || cur.packets == 0 {
			return
		}
		r := cur
		r.sr, r.at = sr, time.Now()
		got = append(got, r)
		if len(got) == n {
			close(done)
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(testsupport.Patience):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d sender reports of %d in %v", len(got), n, testsupport.Patience)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}
