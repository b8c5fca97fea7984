package source_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/feed"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestTCPListenNewPublisherPausesInFrames: a publisher whose encoder
// wrote whole frames taught the parser to end units at pauses; the next
// publisher's frames arrived in pieces with pauses between them, so its
// first keyframe was cut at the first pause: "3238 garbage bytes", then
// a GOP of "undecodable frames dropped". Each publisher is now parsed from
// scratch: the second one's first unit is its keyframe, whole, and
// nothing it sent is lost or cut.
func TestTCPListenNewPublisherPausesInFrames(t *testing.T) {
	var logs testsupport.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	addrc := make(chan net.Addr, 1)
	src := &source.TCPListen{Addr: "127.0.0.1:0", Log: log}
	source.SetReady(src, func(a net.Addr) { addrc <- a })
	h := hub.New(hub.Config{})
	f := feed.New("cam", src, h, feed.Options{StallTimeout: time.Minute}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := (<-addrc).String()

	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 15})
	if err != nil {
		t.Fatal(err)
	}
	// publish sends frames, each cut in pieces with a pause after each,
	// and returns the VCL NAL units of each frame, for comparison.
	publish := func(frames, pieces int, cut int) [][][]byte {
		c := source.TakeSlot(t, addr) // once the last publisher's slot is free
		defer c.Close()
		var sent [][][]byte
		for i := range frames {
			nalus, _ := g.Next(time.Now())
			var vcl [][]byte
			for _, n := range nalus {
				if h264.TypeOf(n).IsVCL() {
					vcl = append(vcl, bytes.Clone(n))
				}
			}
			sent = append(sent, vcl)
			b := testsrc.AppendAnnexB(nil, nalus)
			if i == frames-1 && cut > 0 {
				b = b[:len(b)-cut] // killed in the middle of its last frame
			}
			step := (len(b) + pieces - 1) / pieces
			for len(b) > 0 {
				n := min(step, len(b))
				if _, err := c.Write(b[:n]); err != nil {
					t.Fatal(err)
				}
				b = b[n:]
				time.Sleep(3 * time.Millisecond)
			}
		}
		return sent
	}
	units := func() int { return len(h.Since(time.Time{})) }
	// The first publisher pauses only between frames: enough pauses for
	// the parser to trust them.
	first := publish(2*h264.PausesToTrust, 1, 0)
	testsupport.Eventually(t, "the first publisher's units", func() bool { return units() >= len(first) })
	// The second one pauses inside frames, and is killed in the middle of
	// its last one; the third one pauses inside frames too.
	g.RequestKeyframe()
	second := publish(20, 4, 100)
	testsupport.Eventually(t, "the second publisher's units", func() bool { return units() >= len(first)+len(second)-1 })
	g.RequestKeyframe()
	third := publish(40, 4, 0)
	// The last frame is emitted when the next one starts or the input
	// ends: all but one are enough to compare.
	testsupport.Eventually(t, "the third publisher's units", func() bool {
		return units() >= len(first)+len(second)-1+len(third)-1
	})

	// The feed logs damage once a second: wait for a line that would come.
	time.Sleep(1500 * time.Millisecond)
	st := f.Status().Parser
	if st.GarbageBytes != 0 || st.Dropped != 0 || st.Fragments != 0 || st.BadNALUs != 0 {
		t.Errorf("damage: %d garbage bytes, %d undecodable frames dropped, %d cut, %d bad NAL units",
			st.GarbageBytes, st.Dropped, st.Fragments, st.BadNALUs)
	}
	for _, bad := range []string{"garbage", "undecodable", "damaged", "pauses inside pictures"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("the feed logged %q:\n%s", bad, logs.String())
		}
	}
	check := func(who string, got []*h264.AccessUnit, want [][][]byte) {
		for i, au := range got {
			var vcl [][]byte
			for _, n := range au.NALUs {
				if h264.TypeOf(n).IsVCL() {
					vcl = append(vcl, n)
				}
			}
			if i >= len(want) || len(vcl) != len(want[i]) {
				t.Errorf("%s: unit %d has %d slices, want %d", who, i, len(vcl), len(want[min(i, len(want)-1)]))
				continue
			}
			for j := range vcl {
				if !bytes.Equal(vcl[j], want[i][j]) {
					t.Errorf("%s: unit %d slice %d: %d bytes, want %d (cut or glued)", who, i, j, len(vcl[j]), len(want[i][j]))
				}
			}
		}
	}
	// The killed publisher's cut frame never goes out, nor is it glued to
	// the next publisher's first one.
	got := h.Since(time.Time{})
	for i, want := range [][][][]byte{first, second[:len(second)-1], third[:len(third)-1]} {
		who := []string{"first", "second", "third"}[i] + " publisher"
		if len(got) < len(want) {
			t.Fatalf("%s: %d units, want %d", who, len(got), len(want))
		}
		if !got[0].Keyframe {
			t.Errorf("%s: the first unit is not its keyframe", who)
		}
		check(who, got[:len(want)], want)
		got = got[len(want):]
	}
}
