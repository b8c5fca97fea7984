package mse

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/camfeed/camfeed/internal/hub"
)

// TestSharedFragmentsMatchMuxer: a viewer that starts with the feed gets,
// from the shared fragments and its own timeline, exactly the bytes its
// own muxer would have made.
func TestSharedFragmentsMatchMuxer(t *testing.T) {
	aus, params := units(t, 60)
	m := newMuxer(params.Info.FPS)
	fr := newFragmenter(params.Info.FPS)
	var tl timeline
	for i, au := range aus {
		want, err := m.fragment(au)
		if err != nil {
			t.Fatal(err)
		}
		x, err := fr.get(hub.Frame{AccessUnit: au, Seq: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		got := append(bytes.Clone(tl.header(x)), x.mdat()...)
		if !bytes.Equal(got, want) {
			t.Fatalf("unit %d: shared fragment differs from the viewer's own muxer", i)
		}
	}
}

// TestSharedFragmentsLateViewer: a viewer joining later, at a keyframe,
// starts at sequence number 1 and decode time 0, then follows the
// feed's timeline, whichever viewer made the fragments first.
func TestSharedFragmentsLateViewer(t *testing.T) {
	aus, params := units(t, 45)
	fr := newFragmenter(params.Info.FPS)
	for i, au := range aus[:40] {
		if _, err := fr.get(hub.Frame{AccessUnit: au, Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var tl timeline
	start := 30 // the second keyframe (intra 30)
	if !aus[start].Keyframe {
		t.Fatal("unit 30 is not a keyframe")
	}
	var prev uint64
	for i := start; i < len(aus); i++ {
		x, err := fr.get(hub.Frame{AccessUnit: aus[i], Seq: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		b := append(bytes.Clone(tl.header(x)), x.mdat()...)
		var parts fmp4.Parts
		if err := parts.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		p := parts[0]
		if want := uint32(i - start + 1); p.SequenceNumber != want {
			t.Fatalf("unit %d: sequence %d, want %d", i, p.SequenceNumber, want)
		}
		dts := p.Tracks[0].BaseTime
		if i == start && dts != 0 || i > start && dts <= prev {
			t.Fatalf("unit %d: decode time %d after %d", i, dts, prev)
		}
		if i > start && (dts-prev < clockRate/40 || dts-prev > clockRate/20) {
			t.Fatalf("unit %d: %d ticks after the previous one at 30 fps", i, dts-prev)
		}
		if got := p.Tracks[0].Samples[0].IsNonSyncSample; got == aus[i].Keyframe {
			t.Fatalf("unit %d: non-sync %v for keyframe %v", i, got, aus[i].Keyframe)
		}
		prev = dts
	}
}
