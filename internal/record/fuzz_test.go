package record

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// seedSegment is a small segment file: an init and two fragments.
func seedSegment(tb testing.TB) []byte {
	var buf seekablebuffer.Buffer
	g, err := testsrc.New(testsrc.Config{Width: 64, Height: 64})
	if err != nil {
		tb.Fatal(err)
	}
	sps, pps := g.SPS(), g.PPS()
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &codecs.H264{SPS: sps, PPS: pps}}}}
	if err := init.Marshal(&buf); err != nil {
		tb.Fatal(err)
	}
	out := append([]byte(nil), buf.Bytes()...)
	for i := range 2 {
		buf.Reset()
		part := fmp4.Part{SequenceNumber: uint32(i + 1), Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(i * 6000), Samples: []*fmp4.Sample{
			{Duration: 3000, Payload: []byte{0, 0, 0, 2, 0x65, 0x88}},
			{Duration: 3000, IsNonSyncSample: true, Payload: []byte{0, 0, 0, 2, 0x41, 0x9a}},
		}}}}
		if err := part.Marshal(&buf); err != nil {
			tb.Fatal(err)
		}
		out = append(out, buf.Bytes()...)
	}
	return out
}

// FuzzScan feeds scan what a power cut or a damaged card can leave: it
// must not panic, and what it calls whole must be whole fragments laid
// end to end within the file.
func FuzzScan(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(seg[:len(seg)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		init, frags, whole, err := scan(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			return
		}
		if whole > int64(len(data)) || int64(len(init)) > whole {
			t.Fatalf("whole %d, init %d, of %d bytes", whole, len(init), len(data))
		}
		off := int64(len(init))
		for _, fi := range frags {
			if fi.off != off || fi.size <= 0 {
				t.Fatalf("fragment at %d (%d bytes), want at %d", fi.off, fi.size, off)
			}
			off += fi.size
		}
		if off != whole {
			t.Fatalf("fragments end at %d, whole %d", off, whole)
		}
	})
}

func TestSeedSegment(t *testing.T) {
	seg := seedSegment(t)
	_, frags, whole, err := scan(bytes.NewReader(seg), int64(len(seg)), nil)
	if err != nil || len(frags) != 2 || whole != int64(len(seg)) || !frags[0].sync || frags[1].base != 6000 || frags[1].dur != 6000 {
		t.Fatalf("%v %+v %d of %d", err, frags, whole, len(seg))
	}
}
