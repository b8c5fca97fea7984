package h264

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

var now = time.Unix(1_700_000_000, 0)

// Hand-made NAL units. The SPS is a real 128x96 Constrained Baseline SPS so
// ParseSPS accepts it; slices only need a valid first_mb_in_slice.
var (
	spsNAL  = mustSPS()
	ppsNAL  = []byte{0x68, 0xce, 0x38, 0x80}
	idrNAL  = []byte{0x65, 0x88, 0x84, 0x00, 0x33} // first_mb 0
	idr2NAL = []byte{0x65, 0x40, 0x11, 0x22}       // first_mb 1 (second slice)
	pNAL    = []byte{0x41, 0x9a, 0x02, 0x03}       // first_mb 0
	p2NAL   = []byte{0x41, 0x40, 0x55}             // first_mb 1
	audNAL  = []byte{0x09, 0xf0}
	seiNAL  = []byte{0x06, 0x05, 0x01, 0xaa, 0x80}
)

func mustSPS() []byte {
	data, err := os.ReadFile("testdata/slices_aud.h264")
	if err != nil {
		panic(err)
	}
	for _, n := range splitAll(data) {
		if TypeOf(n) == NALUTypeSPS {
			return n
		}
	}
	panic("no SPS in testdata")
}

// splitAll is a slow reference splitter used only by tests.
func splitAll(b []byte) [][]byte {
	var out [][]byte
	var s splitter
	s.maxNAL = 1 << 30
	s.write(b, func(n []byte) { out = append(out, append([]byte(nil), n...)) }, func() {})
	s.flush(func(n []byte) { out = append(out, append([]byte(nil), n...)) }, func() {})
	return out
}

func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// parseAll runs a stream through a parser in chunks of the given size and
// flushes at the end. It returns a compact description of each unit: its
// NAL types, with K for keyframes.
func parseAll(t testing.TB, cfg ParserConfig, data []byte, chunk int) ([]string, *Parser) {
	p := NewParser(cfg)
	var got []string
	emit := func(au *AccessUnit) {
		checkAU(t, au)
		d := ""
		if au.Keyframe {
			d = "K"
		}
		for _, n := range au.NALUs {
			d += fmt.Sprint(TypeOf(n))
		}
		got = append(got, d)
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		p.Write(data[:n], now, emit)
		data = data[n:]
	}
	p.Flush(now, emit)
	return got, p
}

// checkAU asserts what every emitted unit must satisfy.
func checkAU(t testing.TB, au *AccessUnit) {
	t.Helper()
	var rebuilt []byte
	var vcl, sps, pps bool
	for _, n := range au.NALUs {
		rebuilt = append(rebuilt, 0, 0, 0, 1)
		rebuilt = append(rebuilt, n...)
		switch TypeOf(n) {
		case NALUTypeSPS:
			sps = true
		case NALUTypePPS:
			pps = true
		case NALUTypeIDR, NALUTypeNonIDR:
			vcl = true
		}
	}
	rebuilt = append(rebuilt, trailingAUD...)
	if !bytes.Equal(rebuilt, au.Data) {
		t.Fatalf("NALUs do not match Data")
	}
	if !vcl {
		t.Fatalf("access unit without a slice")
	}
	if au.Keyframe && !(sps && pps) {
		t.Fatalf("keyframe without SPS/PPS")
	}
}

func TestParserCases(t *testing.T) {
	tests := []struct {
		name  string
		cfg   ParserConfig
		data  []byte
		want  []string
		check func(*testing.T, Stats)
	}{
		{"idr then p", ParserConfig{}, annexB(spsNAL, ppsNAL, idrNAL, pNAL, pNAL), []string{"K785", "1", "1"}, nil},
		{"3-byte start codes", ParserConfig{},
			cat([]byte{0, 0, 1}, spsNAL, []byte{0, 0, 1}, ppsNAL, []byte{0, 0, 1}, idrNAL, []byte{0, 0, 1}, pNAL),
			[]string{"K785", "1"}, nil},
		{"trailing zeros", ParserConfig{},
			cat(annexB(spsNAL, ppsNAL, idrNAL), []byte{0, 0, 0, 0, 0}, annexB(pNAL), []byte{0, 0}),
			[]string{"K785", "1"}, nil},
		{"AUD dropped and splits units", ParserConfig{}, annexB(audNAL, spsNAL, ppsNAL, idrNAL, audNAL, pNAL, audNAL, pNAL),
			[]string{"K785", "1", "1"}, nil},
		{"two slices a picture", ParserConfig{}, annexB(spsNAL, ppsNAL, idrNAL, idr2NAL, pNAL, p2NAL, pNAL),
			[]string{"K7855", "11", "1"}, nil},
		{"SEI starts a new unit", ParserConfig{}, annexB(spsNAL, ppsNAL, seiNAL, idrNAL, seiNAL, pNAL),
			[]string{"K7865", "61"}, nil},
		{"P before first keyframe dropped", ParserConfig{}, annexB(pNAL, pNAL, spsNAL, ppsNAL, idrNAL, pNAL),
			[]string{"K785", "1"}, func(t *testing.T, s Stats) {
				if s.Dropped != 2 {
					t.Errorf("dropped %d, want 2", s.Dropped)
				}
			}},
		{"IDR without parameter sets gets cached ones", ParserConfig{}, annexB(spsNAL, ppsNAL, idrNAL, pNAL, idrNAL, pNAL),
			[]string{"K785", "1", "K785", "1"}, nil},
		{"IDR before any SPS is dropped", ParserConfig{}, annexB(idrNAL, pNAL, spsNAL, ppsNAL, idrNAL),
			[]string{"K785"}, nil},
		{"garbage before first start code", ParserConfig{}, cat([]byte("garbage!"), annexB(spsNAL, ppsNAL, idrNAL, pNAL)),
			[]string{"K785", "1"}, func(t *testing.T, s Stats) {
				if s.GarbageBytes != 8 {
					t.Errorf("garbage %d, want 8", s.GarbageBytes)
				}
			}},
		{"forbidden bit NAL drops to next keyframe", ParserConfig{},
			annexB(spsNAL, ppsNAL, idrNAL, pNAL, []byte{0xff, 1, 2}, pNAL, pNAL, idrNAL, pNAL),
			[]string{"K785", "1", "K785", "1"}, func(t *testing.T, s Stats) {
				if s.BadNALUs != 1 {
					t.Errorf("bad %d, want 1", s.BadNALUs)
				}
			}},
		{"oversized NAL drops to next keyframe", ParserConfig{MaxNALSize: 64},
			annexB(spsNAL, ppsNAL, idrNAL, pNAL, append([]byte{0x41, 0x80}, bytes.Repeat([]byte{0xaa}, 100)...), pNAL, idrNAL, pNAL),
			[]string{"K785", "1", "K785", "1"}, func(t *testing.T, s Stats) {
				if s.Oversized != 1 {
					t.Errorf("oversized %d, want 1", s.Oversized)
				}
			}},
		{"oversized access unit dropped", ParserConfig{MaxAUSize: 80},
			annexB(spsNAL, ppsNAL, idrNAL, pNAL, pNAL, append([]byte{0x41, 0x80}, bytes.Repeat([]byte{0xaa}, 90)...), pNAL, idrNAL),
			[]string{"K785", "1", "1", "K785"}, func(t *testing.T, s Stats) {
				if s.Oversized != 1 {
					t.Errorf("oversized %d, want 1", s.Oversized)
				}
			}},
		{"reserved and filler NALs ignored", ParserConfig{}, annexB(spsNAL, ppsNAL, idrNAL, []byte{0x0c, 0xff, 0xff}, []byte{0x17, 1}, pNAL),
			[]string{"K785", "1"}, nil},
		{"stamp ingest adds SEI before first slice", ParserConfig{StampIngest: true}, annexB(spsNAL, ppsNAL, idrNAL, pNAL),
			[]string{"K7865", "61"}, nil},
		{"mixed IDR and non-IDR slices dropped", ParserConfig{}, annexB(spsNAL, ppsNAL, idrNAL, pNAL, idr2NAL, pNAL, idrNAL),
			[]string{"K785", "K785"}, nil},
		{"empty", ParserConfig{}, nil, nil, nil},
		{"zeros only", ParserConfig{}, make([]byte, 1000), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 2, 3, 5, 7, 64, 1 << 20} {
				got, p := parseAll(t, tc.cfg, tc.data, chunk)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("chunk %d: got %v, want %v", chunk, got, tc.want)
				}
				if tc.check != nil {
					tc.check(t, p.Stats())
				}
			}
		})
	}
}

func TestParserRealStreams(t *testing.T) {
	for _, tc := range []struct {
		file       string
		units, key int
		profile    string
	}{
		{"slices_aud.h264", 20, 4, "Constrained Baseline"},
		{"high.h264", 20, 4, "High"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{1, 13, 4096, 1 << 20} {
				got, p := parseAll(t, ParserConfig{}, data, chunk)
				keys := 0
				for _, g := range got {
					if g[0] == 'K' {
						keys++
					}
				}
				if len(got) != tc.units || keys != tc.key {
					t.Fatalf("chunk %d: %d units %d keyframes, want %d/%d: %v", chunk, len(got), keys, tc.units, tc.key, got)
				}
				_, _, info, _ := p.Params()
				if info.Width != 128 || info.Height != 96 || info.ProfileName() != tc.profile {
					t.Fatalf("info %+v %s", info, info.ProfileName())
				}
				if st := p.Stats(); st.GarbageBytes != 0 || st.BadNALUs != 0 || st.Dropped != 0 {
					t.Fatalf("stats %+v", st)
				}
			}
		})
	}
}

// TestFlushEmitsWithoutWaiting checks that Flush hands out the pending unit
// at once, and that a NAL unit cut by a Flush is detected and the stream
// resyncs at the next keyframe.
func TestFlush(t *testing.T) {
	p := NewParser(ParserConfig{})
	var got int
	emit := func(*AccessUnit) { got++ }
	p.Write(annexB(spsNAL, ppsNAL, idrNAL), now, emit)
	if got != 0 {
		t.Fatal("emitted before the unit could be known complete")
	}
	p.Flush(now, emit)
	if got != 1 {
		t.Fatalf("flush emitted %d, want 1", got)
	}
	// A P slice whose second half arrives after the flush.
	half := annexB(pNAL)
	p.Write(half[:6], now, emit)
	p.Flush(now, emit)
	p.Write(half[6:], now, emit)
	p.Write(annexB(pNAL), now, emit)
	p.Flush(now, emit)
	if got != 2 {
		t.Fatalf("got %d units, want 2 (the cut one emitted, then drop until keyframe)", got)
	}
	p.Write(annexB(idrNAL), now, emit)
	p.Flush(now, emit)
	if got != 3 {
		t.Fatalf("keyframe after resync not emitted")
	}
}

func TestTimeSEI(t *testing.T) {
	ts := time.UnixMicro(1_764_115_200_123_456)
	for _, kind := range []TimeKind{TimeCapture, TimeIngest} {
		n := AppendTimeSEI(nil, kind, ts)
		k, got, err := ParseTimeSEI(n)
		if err != nil || k != kind || !got.Equal(ts) {
			t.Fatalf("round trip: %v %v %v", k, got, err)
		}
	}
	// emulation prevention: a time whose bytes contain 00 00 01
	ts = time.UnixMicro(0x0000_0001_0000_0100)
	n := AppendTimeSEI(nil, TimeCapture, ts)
	if bytes.Contains(n, []byte{0, 0, 1}) {
		t.Fatal("start code emulated inside SEI")
	}
	if _, got, err := ParseTimeSEI(n); err != nil || !got.Equal(ts) {
		t.Fatalf("round trip with emulation prevention: %v %v", got, err)
	}
	if _, _, err := ParseTimeSEI(seiNAL); err != ErrNoTimeSEI {
		t.Fatalf("foreign SEI: %v", err)
	}
	// Captured is taken from the stream's capture stamp.
	p := NewParser(ParserConfig{})
	var au *AccessUnit
	p.WriteAU([][]byte{spsNAL, ppsNAL, AppendTimeSEI(nil, TimeCapture, ts), idrNAL}, now, func(a *AccessUnit) { au = a })
	if au == nil || !au.Captured.Equal(ts) || !au.Keyframe {
		t.Fatalf("WriteAU: %+v", au)
	}
}

func BenchmarkParser(b *testing.B) {
	data, err := os.ReadFile("testdata/high.h264")
	if err != nil {
		b.Fatal(err)
	}
	p := NewParser(ParserConfig{StampIngest: true})
	units := 0
	emit := func(*AccessUnit) { units++ }
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off < len(data); off += 4096 {
			p.Write(data[off:min(off+4096, len(data))], now, emit)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(units), "ns/unit")
}

// timeAfterPadding is one SEI NAL unit with a large user-data payload full
// of zero bytes (so with emulation prevention bytes) and then camfeed's
// time stamp: an encoder's own SEI in front of ours.
func timeAfterPadding(ts time.Time, padding int) []byte {
	var rbsp []byte
	rbsp = append(rbsp, 5)
	size := 16 + padding
	for ; size >= 0xff; size -= 0xff {
		rbsp = append(rbsp, 0xff)
	}
	rbsp = append(rbsp, byte(size))
	rbsp = append(rbsp, "someonesuuid0000"...)
	rbsp = append(rbsp, make([]byte, padding)...)
	own := AppendTimeSEI(nil, TimeCapture, ts) // header, then its escaped payload
	var raw []byte
	raw = RemoveEmulationPrevention(raw, own[1:])
	rbsp = append(rbsp, raw...) // its payload and trailing bits
	return AppendEmulationPrevention([]byte{byte(NALUTypeSEI)}, rbsp)
}

func TestTimeSEIAfterOtherPayloads(t *testing.T) {
	ts := time.UnixMicro(1_764_115_200_123_456)
	for _, padding := range []int{0, 1, 254, 255, 256, 10_000} {
		n := timeAfterPadding(ts, padding)
		if padding > 2 && !bytes.Contains(n, []byte{0, 0, 3}) {
			t.Fatal("test stream has no emulation prevention bytes")
		}
		k, got, err := ParseTimeSEI(n)
		if err != nil || k != TimeCapture || !got.Equal(ts) {
			t.Fatalf("padding %d: %v %v %v", padding, k, got, err)
		}
		// Cut anywhere, it is an error or the right stamp, never a wrong one.
		for cut := 1; cut < len(n); cut += 1 + cut/8 {
			if _, got, err := ParseTimeSEI(n[:cut]); err == nil && !got.Equal(ts) {
				t.Fatalf("padding %d cut at %d: %v", padding, cut, got)
			}
		}
	}
}

// TestRBSPSkip: skipping RBSP bytes in stretches gives what stepping byte
// by byte gives, on inputs thick with zeros and 03s.
func TestRBSPSkip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0, 0, 0, 3, 3, 1, 0xff}
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		zeros := rng.IntN(3)
		steps := []int{rng.IntN(45), rng.IntN(10)}
		fast, slow := rbspReader{b: b, zeros: zeros}, rbspReader{b: b, zeros: zeros}
		for _, n := range steps {
			okFast := fast.skip(n)
			okSlow := true
			for range n {
				if _, ok := slow.next(); !ok {
					okSlow = false
					break
				}
			}
			if okFast != okSlow {
				t.Fatalf("% x from %d zeros, skip %v: ok %v, stepping %v", b, zeros, steps, okFast, okSlow)
			}
			if !okFast {
				break
			}
			// What is left must read the same (a state just before an
			// emulation prevention byte equals the one just after it).
			if got, want := drain(fast), drain(slow); !bytes.Equal(got, want) {
				t.Fatalf("% x from %d zeros, skip %v: % x left, stepping % x", b, zeros, steps, got, want)
			}
		}
	}
}

// drain reads what is left of a copy of r.
func drain(r rbspReader) []byte {
	var out []byte
	for {
		c, ok := r.next()
		if !ok {
			return out
		}
		out = append(out, c)
	}
}
