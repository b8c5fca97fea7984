package mse

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// units returns n access units of the test pattern, 30 fps.
func units(t testing.TB, n int) ([]*h264.AccessUnit, hub.Params) {
	t.Helper()
	g, err := testsrc.New(testsrc.Config{Width: 320, Height: 240})
	if err != nil {
		t.Fatal(err)
	}
	p := h264.NewParser(h264.ParserConfig{StampIngest: true})
	start := time.Unix(1700000000, 0)
	var aus []*h264.AccessUnit
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Second / 30)
		nalus, _ := g.Next(at)
		p.WriteAU(nalus, at, func(au *h264.AccessUnit) { aus = append(aus, au) })
	}
	info, err := h264.ParseSPS(g.SPS())
	if err != nil {
		t.Fatal(err)
	}
	return aus, hub.Params{SPS: g.SPS(), PPS: g.PPS(), Info: info, Gen: 1}
}

func TestInitSegment(t *testing.T) {
	_, params := units(t, 1)
	b, err := initSegment(params)
	if err != nil {
		t.Fatal(err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if len(init.Tracks) != 1 || init.Tracks[0].TimeScale != clockRate {
		t.Fatalf("tracks %+v", init.Tracks)
	}
	c, ok := init.Tracks[0].Codec.(*codecs.H264)
	if !ok || !bytes.Equal(c.SPS, params.SPS) || !bytes.Equal(c.PPS, params.PPS) {
		t.Errorf("codec %#v", init.Tracks[0].Codec)
	}
	if got := codecString(params); got != "avc1."+params.Info.ProfileLevelID() || len(got) != 11 {
		t.Errorf("codec string %q", got)
	}
}

// TestFragments reads the fragments back: one sample each, decode times
// from the ingest clock, sync flags, and the NAL units, SEI included.
func TestFragments(t *testing.T) {
	aus, params := units(t, 40)
	// A skip: the hub jumps this viewer ahead by ten units.
	aus = append(aus[:20], aus[30:]...)
	m := newMuxer(params.Info.FPS)
	for i, au := range aus {
		b, err := m.fragment(au)
		if err != nil {
			t.Fatal(err)
		}
		var parts fmp4.Parts
		if err := parts.Unmarshal(b); err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
		if len(parts) != 1 || len(parts[0].Tracks) != 1 || len(parts[0].Tracks[0].Samples) != 1 {
			t.Fatalf("unit %d: want one part, one track, one sample", i)
		}
		tr := parts[0].Tracks[0]
		wantDTS := uint64(au.Received.Sub(aus[0].Received)) * clockRate / uint64(time.Second)
		if tr.BaseTime != wantDTS {
			t.Errorf("unit %d: decode time %d, want %d", i, tr.BaseTime, wantDTS)
		}
		s := tr.Samples[0]
		if s.IsNonSyncSample == au.Keyframe {
			t.Errorf("unit %d: non-sync %v for keyframe %v", i, s.IsNonSyncSample, au.Keyframe)
		}
		if s.Duration < 2900 || s.Duration > 3100 {
			t.Errorf("unit %d: duration %d, want about 3000", i, s.Duration)
		}
		var want []byte
		for _, n := range au.NALUs {
			want = binary.BigEndian.AppendUint32(want, uint32(len(n)))
			want = append(want, n...)
		}
		if !bytes.Equal(s.Payload, want) {
			t.Errorf("unit %d: payload differs", i)
		}
	}
}

func BenchmarkFragment(b *testing.B) {
	aus, params := units(b, 30)
	m := newMuxer(params.Info.FPS)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		au := *aus[i%len(aus)]
		au.Received = aus[0].Received.Add(time.Duration(i) * time.Second / 30)
		if _, err := m.fragment(&au); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
