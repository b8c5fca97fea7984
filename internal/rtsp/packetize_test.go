package rtsp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
)

func hubFrame(au *h264.AccessUnit, seq uint64) hub.Frame { return hub.Frame{AccessUnit: au, Seq: seq} }

// nalOfSize returns a NAL unit of n bytes (n >= 1) with header h.
func nalOfSize(h byte, n int) []byte {
	b := make([]byte, n)
	b[0] = h
	for i := 1; i < n; i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// patternUnits returns an IDR and a P access unit of the test pattern.
func patternUnits(t testing.TB, w, h int) (idr, p [][]byte) {
	g, err := testsrc.New(testsrc.Config{Width: w, Height: h, FPS: 30, Intra: 30})
	if err != nil {
		t.Fatal(err)
	}
	copyAU := func(nalus [][]byte) [][]byte {
		out := make([][]byte, len(nalus))
		for i, n := range nalus {
			out[i] = bytes.Clone(n)
		}
		return out
	}
	for idr == nil || p == nil {
		nalus, key := g.Next(time.Now())
		if key && idr == nil {
			idr = copyAU(nalus)
		} else if !key && p == nil {
			p = copyAU(nalus)
		}
	}
	return idr, p
}

// packetizeCases drive the comparison test, the fuzz seeds and the
// allocation test.
func packetizeCases(t testing.TB) map[string][][]byte {
	idr, p := patternUnits(t, 1280, 720)
	return map[string][][]byte{
		"pattern IDR 1280x720":   idr,
		"pattern P 1280x720":     p,
		"one small":              {nalOfSize(0x65, 10)},
		"just below max":         {nalOfSize(0x65, maxPayload-1)},
		"exactly max":            {nalOfSize(0x65, maxPayload)},
		"just above max":         {nalOfSize(0x65, maxPayload+1)},
		"two fragments exactly":  {nalOfSize(0x65, 1+2*(maxPayload-2))},
		"aggregate at the limit": {nalOfSize(0x67, 700), nalOfSize(0x68, maxPayload-1-2-700-2)},
		"aggregate one over":     {nalOfSize(0x67, 700), nalOfSize(0x68, maxPayload-1-2-700-1)},
		"small then large":       {nalOfSize(0x67, 20), nalOfSize(0x68, 4), nalOfSize(0x06, 30), nalOfSize(0x65, 5000)},
		"large then small":       {nalOfSize(0x65, 5000), nalOfSize(0x01, 20), nalOfSize(0x01, 30)},
		"many small": func() [][]byte {
			var a [][]byte
			for range 20 {
				a = append(a, nalOfSize(0x41, 170))
			}
			return a
		}(),
	}
}

// checkAgainstGortsplib packetises nalus and compares every payload and
// the marker bits with gortsplib's rtph264.Encoder, then decodes the
// packets back to the same NAL units.
func checkAgainstGortsplib(t *testing.T, nalus [][]byte) {
	t.Helper()
	enc := rtph264.Encoder{PayloadType: payloadType, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	want, err := enc.Encode(nalus)
	if err != nil {
		t.Fatal(err)
	}
	var u rtpUnit
	u.packetize(nalus)
	if u.packets() != len(want) {
		t.Fatalf("%d packets, gortsplib makes %d", u.packets(), len(want))
	}
	dec := rtph264.Decoder{}
	if err := dec.Init(); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for i, w := range want {
		if !bytes.Equal(u.payload(i), w.Payload) {
			t.Fatalf("packet %d: payload differs from gortsplib's (%d vs %d bytes)", i, len(u.payload(i)), len(w.Payload))
		}
		if w.Marker != (i == len(want)-1) {
			t.Fatalf("gortsplib's marker on packet %d of %d", i, len(want))
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: payloadType, SequenceNumber: uint16(i), Marker: i == len(want)-1}, Payload: u.payload(i)}
		au, err := dec.Decode(pkt)
		if err == nil {
			got = append(got, au...)
		}
	}
	if len(got) != len(nalus) {
		t.Fatalf("decoded %d NAL units, want %d", len(got), len(nalus))
	}
	for i := range nalus {
		if !bytes.Equal(got[i], nalus[i]) {
			t.Fatalf("NAL unit %d decoded differently", i)
		}
	}
}

func TestPacketizeMatchesGortsplib(t *testing.T) {
	for name, nalus := range packetizeCases(t) {
		t.Run(name, func(t *testing.T) { checkAgainstGortsplib(t, nalus) })
	}
}

// FuzzPacketize draws NAL unit sizes from the input: every packetisation
// must equal gortsplib's and decode back to the same units.
func FuzzPacketize(f *testing.F) {
	f.Add([]byte{10}, uint64(1))
	f.Add([]byte{255, 255, 255, 3, 200}, uint64(2))
	f.Add([]byte{40, 40, 40, 40}, uint64(3))
	f.Fuzz(func(t *testing.T, sizes []byte, seed uint64) {
		if len(sizes) == 0 || len(sizes) > 16 {
			return
		}
		r := rand.New(rand.NewPCG(seed, seed))
		var nalus [][]byte
		for _, s := range sizes {
			n := 1 + int(s)*int(s)/8 // up to ~8 KB, dense near the packet limits
			nal := make([]byte, n)
			for i := range nal {
				nal[i] = byte(r.Uint32())
			}
			nal[0] = nal[0]&0x60 | 1 // a valid header: forbidden bit clear, not a STAP/FU type
			nalus = append(nalus, nal)
		}
		checkAgainstGortsplib(t, nalus)
	})
}

// TestUnitCacheShares checks that viewers asking for the same unit get
// one packetisation, and that a slot reused by a later unit leaves the
// earlier packetisation intact for whoever still holds it.
func TestUnitCacheShares(t *testing.T) {
	var c unitCache
	a := &h264.AccessUnit{NALUs: [][]byte{nalOfSize(0x65, 3000)}}
	b := &h264.AccessUnit{NALUs: [][]byte{nalOfSize(0x41, 100)}}
	u1 := c.get(hubFrame(a, 5))
	if u2 := c.get(hubFrame(a, 5)); u2 != u1 {
		t.Fatal("the same unit was packetised twice")
	}
	before := bytes.Clone(u1.buf)
	u3 := c.get(hubFrame(b, 5+cacheUnits))
	if u3 == u1 || !bytes.Equal(u1.buf, before) {
		t.Fatal("a later unit in the same slot changed an earlier packetisation")
	}
	if u3.packets() != 1 || !bytes.Equal(u3.payload(0), b.NALUs[0]) {
		t.Fatal("wrong packetisation for the later unit")
	}
}

// TestUDPDirectKeepsFlowing: a UDP viewer that sends its own packets keeps
// the shared socket's write deadline ahead. gortsplib pushes it on only
// when it sends; with a 1 s WriteTimeout, packets stopped after a second.
// It matters where the viewers send from the RTP socket itself: without
// a send-only twin (twin_linux.go), as here.
func TestUDPDirectKeepsFlowing(t *testing.T) {
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{WriteTimeout: time.Second, noTwin: true}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	r := startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolUDP})
	r.waitUnits(t, 10, 3*time.Second)
	time.Sleep(2500 * time.Millisecond)
	r.mu.Lock()
	n := len(r.aus)
	r.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	r.mu.Lock()
	m := len(r.aus)
	r.mu.Unlock()
	if m-n < 5 {
		t.Fatalf("%d units in the half second after 3 s, want about 15", m-n)
	}
}

// TestUDPViewersOnTheFanout: unicast UDP viewers that send their own
// packets are served by the feed's fan-out at the live edge, like TCP
// viewers, with no packet lost on the way, and the fan-out ends with them.
func TestUDPViewersOnTheFanout(t *testing.T) {
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
	var rs []*reader
	for range 3 {
		rs = append(rs, startReader(t, url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolUDP}))
	}
	for _, r := range rs {
		r.waitUnits(t, 10, 5*time.Second)
	}
	waitFor(t, "the feed's fan-out running", 5*time.Second, func() bool { return s.fanouts.Running() == 1 })
	before := make([]int, len(rs))
	for i, r := range rs {
		before[i] = len(r.units())
	}
	for i, r := range rs {
		r.waitUnits(t, before[i]+30, 5*time.Second) // a second more, from the fan-out
	}
	for i, r := range rs {
		us := r.units()
		if !us[0].key {
			t.Errorf("viewer %d: first unit is not a keyframe", i)
		}
		r.mu.Lock()
		lost := r.lost
		r.mu.Unlock()
		if lost != 0 {
			t.Errorf("viewer %d: %d packets lost", i, lost)
		}
		r.close()
	}
	waitFor(t, "the fan-out to stop with its viewers", 10*time.Second, func() bool { return s.fanouts.Running() == 0 })
}
