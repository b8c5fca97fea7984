package testsrc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/camfeed/camfeed/internal/h264"
)

// t0 is a capture time just before a day rolls over, so that every digit
// of the clock changes within a test, with a microsecond part that the SEI
// keeps and the pixel time code drops.
var t0 = time.Date(2025, 12, 31, 23, 59, 58, 987654321, time.UTC)

// frameTime is the capture time of frame i: the nominal time plus a few
// milliseconds of jitter, as a real capture clock has.
func frameTime(i, fps int) time.Time {
	return t0.Add(time.Duration(i)*time.Second/time.Duration(fps) + time.Duration(i%3)*time.Millisecond)
}

// sliceHeader is what a test reads back from a slice NAL unit.
type parsedSlice struct {
	refIDC, naluType       uint8
	firstMB, sliceType     uint32
	ppsID, frameNum, idrID uint32
}

func parseSliceHeader(nalu []byte, log2MaxFrameNum int) (parsedSlice, error) {
	s := parsedSlice{refIDC: nalu[0] >> 5 & 3, naluType: nalu[0] & 0x1f}
	r := bitReader{buf: h264.RemoveEmulationPrevention(nil, nalu[1:min(len(nalu), 64)])}
	s.firstMB, s.sliceType, s.ppsID = r.ue(), r.ue(), r.ue()
	s.frameNum = r.u(log2MaxFrameNum)
	if s.naluType == 5 {
		s.idrID = r.ue()
	}
	return s, r.err
}

func TestStreamStructure(t *testing.T) {
	cases := []struct {
		cfg       Config
		frames    int
		forceAt   int // frame that RequestKeyframe is called before; 0 for none
		keyframes []int
	}{
		{Config{Intra: 30}, 65, 0, []int{0, 30, 60}},
		{Config{Intra: 1, Width: 64, Height: 64}, 5, 0, []int{0, 1, 2, 3, 4}},
		{Config{Intra: 10, Width: 176, Height: 144}, 30, 13, []int{0, 10, 13, 23}},
		{Config{Intra: 600, Width: 320, Height: 240}, 700, 0, []int{0, 600}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%+v", c.cfg), func(t *testing.T) {
			g, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var sps mch264.SPS
			if err := sps.Unmarshal(g.SPS()); err != nil {
				t.Fatal(err)
			}
			log2MaxFrameNum := int(sps.Log2MaxFrameNumMinus4) + 4
			var keyframes []int
			idrIDs := map[uint32]int{}
			lastIDR := 0
			for i := 0; i < c.frames; i++ {
				if i == c.forceAt && i > 0 {
					g.RequestKeyframe()
				}
				ts := frameTime(i, 30)
				nalus, key := g.Next(ts)
				want := []h264.NALUType{h264.NALUTypeSEI, h264.NALUTypeNonIDR}
				if key {
					keyframes = append(keyframes, i)
					lastIDR = i
					want = []h264.NALUType{h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeSEI, h264.NALUTypeIDR}
				}
				if len(nalus) != len(want) {
					t.Fatalf("frame %d: %d NAL units, want %d", i, len(nalus), len(want))
				}
				for j, n := range nalus {
					if h264.TypeOf(n) != want[j] || n[0]&0x80 != 0 {
						t.Fatalf("frame %d: NAL unit %d has header %#x, want type %d", i, j, n[0], want[j])
					}
				}
				sei := nalus[len(nalus)-2]
				kind, got, err := h264.ParseTimeSEI(sei)
				if err != nil || kind != h264.TimeCapture || got.UnixMicro() != ts.UnixMicro() {
					t.Fatalf("frame %d: SEI %v %v %v, want capture %v", i, kind, got, err, ts)
				}
				s, err := parseSliceHeader(nalus[len(nalus)-1], log2MaxFrameNum)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				wantType := uint32(sliceTypeP)
				if key {
					wantType = sliceTypeI
					idrIDs[s.idrID]++
				}
				if s.refIDC == 0 || s.firstMB != 0 || s.sliceType != wantType || s.ppsID != 0 {
					t.Fatalf("frame %d: slice header %+v", i, s)
				}
				if want := uint32(i-lastIDR) % (1 << log2MaxFrameNum); s.frameNum != want {
					t.Fatalf("frame %d: frame_num %d, want %d", i, s.frameNum, want)
				}
			}
			if fmt.Sprint(keyframes) != fmt.Sprint(c.keyframes) {
				t.Errorf("keyframes at %v, want %v", keyframes, c.keyframes)
			}
			// idr_pic_id alternates, so two IDRs in a row are told apart (7.4.3).
			if n := len(keyframes); idrIDs[0] != (n+1)/2 || idrIDs[1] != n/2 {
				t.Errorf("idr_pic_id counts %v for %d IDRs", idrIDs, n)
			}
		})
	}
}

func TestSPS(t *testing.T) {
	cases := []struct {
		cfg        Config
		level      uint8
		cropBottom uint32
	}{
		{Config{}, 30, 0},
		{Config{Width: 1920, Height: 1080}, 40, 4},
		{Config{Width: 640, Height: 360, FPS: 25}, 30, 4},
		{Config{Width: 176, Height: 144, FPS: 15, Intra: 600}, 20, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%+v", c.cfg), func(t *testing.T) {
			g, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg := g.Config()
			info, err := h264.ParseSPS(g.SPS())
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != cfg.Width || info.Height != cfg.Height || info.FPS != float64(cfg.FPS) ||
				info.ProfileName() != "Constrained Baseline" || info.ProfileLevelID() != fmt.Sprintf("42c0%02x", c.level) {
				t.Errorf("got %+v (%s, %s)", info, info.ProfileName(), info.ProfileLevelID())
			}
			var s mch264.SPS
			if err := s.Unmarshal(g.SPS()); err != nil {
				t.Fatal(err)
			}
			if s.ProfileIdc != 66 || !s.ConstraintSet0Flag || !s.ConstraintSet1Flag || s.ConstraintSet2Flag || s.ConstraintSet3Flag {
				t.Errorf("profile %d, constraint flags %v %v %v %v", s.ProfileIdc, s.ConstraintSet0Flag, s.ConstraintSet1Flag, s.ConstraintSet2Flag, s.ConstraintSet3Flag)
			}
			if s.PicOrderCntType != 2 || s.MaxNumRefFrames != 1 || !s.FrameMbsOnlyFlag || s.GapsInFrameNumValueAllowedFlag {
				t.Errorf("poc type %d, ref frames %d, frame_mbs_only %v, gaps %v", s.PicOrderCntType, s.MaxNumRefFrames, s.FrameMbsOnlyFlag, s.GapsInFrameNumValueAllowedFlag)
			}
			if 1<<(s.Log2MaxFrameNumMinus4+4) < cfg.Intra {
				t.Errorf("MaxFrameNum %d is below the IDR period %d", 1<<(s.Log2MaxFrameNumMinus4+4), cfg.Intra)
			}
			switch {
			case c.cropBottom == 0 && s.FrameCropping != nil:
				t.Errorf("cropping %+v, want none", *s.FrameCropping)
			case c.cropBottom != 0 && (s.FrameCropping == nil || *s.FrameCropping != mch264.SPS_FrameCropping{BottomOffset: c.cropBottom}):
				t.Errorf("cropping %+v, want bottom %d", s.FrameCropping, c.cropBottom)
			}
			vui := s.VUI
			if vui == nil || vui.TimingInfo == nil || vui.BitstreamRestriction == nil {
				t.Fatalf("VUI %+v lacks timing info or bitstream restriction", vui)
			}
			if ti := *vui.TimingInfo; ti != (mch264.SPS_TimingInfo{NumUnitsInTick: 1, TimeScale: uint32(2 * cfg.FPS), FixedFrameRateFlag: true}) {
				t.Errorf("timing info %+v", ti)
			}
			if br := vui.BitstreamRestriction; br.MaxNumReorderFrames != 0 || br.MaxDecFrameBuffering != 1 {
				t.Errorf("bitstream restriction %+v", *br)
			}
		})
	}
}

// TestParser runs the stream through camfeed's own access-unit assembler,
// the way the hub will receive it.
func TestParser(t *testing.T) {
	g, err := New(Config{Intra: 10})
	if err != nil {
		t.Fatal(err)
	}
	p := h264.NewParser(h264.ParserConfig{})
	var aus []h264.AccessUnit
	for i := 0; i < 25; i++ {
		ts := frameTime(i, 30)
		nalus, key := g.Next(ts)
		n := len(aus)
		p.WriteAU(nalus, ts, func(au *h264.AccessUnit) { aus = append(aus, *au) })
		if len(aus) != n+1 {
			t.Fatalf("frame %d: %d access units out, want 1", i, len(aus)-n)
		}
		au := aus[n]
		if au.Keyframe != key || !au.Captured.Equal(ts.Truncate(time.Microsecond)) || len(au.NALUs) != len(nalus) {
			t.Fatalf("frame %d: keyframe %v captured %v with %d NAL units; want %v %v %d", i, au.Keyframe, au.Captured, len(au.NALUs), key, ts, len(nalus))
		}
	}
	if s := p.Stats(); s.BadNALUs != 0 || s.Dropped != 0 || s.Keyframes != 3 {
		t.Errorf("parser stats %+v", s)
	}
}

// TestCodingCoverage checks that the streams the decode tests check use
// every macroblock coding the encoder has, in both slice types, and every
// coeff_token table that the neighbours can select (nC 0, 8 and 16).
func TestCodingCoverage(t *testing.T) {
	seen := map[string]int{}
	for _, start := range []int64{0, squareBackwards} {
		g, err := New(Config{Intra: 30})
		if err != nil {
			t.Fatal(err)
		}
		g.frame = start
		countKinds(g, 65, seen)
	}
	for _, k := range []string{"I I_PCM", "I I_16x16 nC=0", "I I_16x16 nC=8", "I I_16x16 nC=16",
		"P skip", "P I_PCM", "P I_16x16 nC=0", "P I_16x16 nC=8", "P I_16x16 nC=16"} {
		if seen[k] == 0 {
			t.Errorf("no %s macroblock in the test streams; seen %v", k, seen)
		}
	}
	t.Log(seen)
}

// squareBackwards is a frame number from which, at 640x480@30, the square
// moves left and up for a few seconds. Intra-coded macroblocks that it
// leaves then have I_PCM neighbours on the left and above.
const squareBackwards = 150

func countKinds(g *Generator, frames int, seen map[string]int) {
	for i := 0; i < frames; i++ {
		_, key := g.Next(frameTime(i, 30))
		slice := "P"
		if key {
			slice = "I"
		}
		for y := 0; y < g.seq.hMbs; y++ {
			for x := 0; x < g.seq.wMbs; x++ {
				switch g.kind[y*g.seq.wMbs+x] {
				case mbSkip:
					seen[slice+" skip"]++
				case mbPCM:
					seen[slice+" I_PCM"]++
				case mbFlat:
					seen[fmt.Sprintf("%s I_16x16 nC=%d", slice, g.nC(x, y))]++
				}
			}
		}
	}
}

func TestRun(t *testing.T) {
	g, err := New(Config{Width: 64, Height: 64, FPS: 100, Intra: 5})
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	keys := 0
	start := time.Now()
	err = g.Run(context.Background(), 20, func(nalus [][]byte, key bool, ts time.Time) error {
		if _, got, err := h264.ParseTimeSEI(nalus[len(nalus)-2]); err != nil || !got.Equal(ts.Truncate(time.Microsecond)) {
			return fmt.Errorf("SEI time %v, %v; emitted %v", got, err, ts)
		}
		times = append(times, ts)
		if key {
			keys++
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil || len(times) != 20 || keys != 4 {
		t.Fatalf("Run: %v, %d frames, %d keyframes; want 20 and 4", err, len(times), keys)
	}
	// 20 frames at 100 fps are due over 190 ms.
	if elapsed < 180*time.Millisecond {
		t.Errorf("20 frames took %v, want about 190ms", elapsed)
	}
	for i := 1; i < len(times); i++ {
		if !times[i].After(times[i-1]) {
			t.Errorf("capture time %d (%v) not after %v", i, times[i], times[i-1])
		}
	}

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := g.Run(ctx, 0, func([][]byte, bool, time.Time) error {
			if n++; n == 3 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 3 {
			t.Errorf("got %v after %d frames, want context.Canceled after 3", err, n)
		}
	})
	t.Run("emit error", func(t *testing.T) {
		boom := errors.New("boom")
		err := g.Run(context.Background(), 0, func([][]byte, bool, time.Time) error { return boom })
		if !errors.Is(err, boom) {
			t.Errorf("got %v, want %v", err, boom)
		}
	})
}
