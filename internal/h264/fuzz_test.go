package h264

import (
	"os"
	"testing"
)

// FuzzParser feeds arbitrary bytes, in arbitrary chunks, through the parser.
// Whatever the input, it must not panic, and everything it emits must keep
// the parser's promises (checkAU): slices present, keyframes decodable, the
// first unit a keyframe, sizes within the limits.
func FuzzParser(f *testing.F) {
	for _, seed := range [][]byte{
		annexB(spsNAL, ppsNAL, idrNAL, pNAL, pNAL),
		annexB(audNAL, spsNAL, ppsNAL, seiNAL, idrNAL, idr2NAL, audNAL, pNAL, p2NAL),
		cat([]byte("junk"), annexB(spsNAL, ppsNAL, idrNAL), []byte{0, 0, 0, 0}, annexB([]byte{0xff}, pNAL)),
		AppendTimeSEI(annexB(spsNAL, ppsNAL, idrNAL), TimeCapture, now),
	} {
		f.Add(seed, uint16(3))
	}
	for _, name := range []string{"testdata/slices_aud.h264", "testdata/high.h264"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data[:min(len(data), 3000)], uint16(1000))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		cfg := ParserConfig{MaxNALSize: 2048, MaxAUSize: 4096, StampIngest: chunk%2 == 0}
		p := NewParser(cfg)
		first := true
		emit := func(au *AccessUnit) {
			checkAU(t, au)
			if first && !au.Keyframe {
				t.Fatal("first unit is not a keyframe")
			}
			first = false
			if len(au.Data) > cfg.MaxAUSize+2*cfg.MaxNALSize+64 {
				t.Fatalf("unit of %d bytes over the limits", len(au.Data))
			}
		}
		step := int(chunk%512) + 1
		for off := 0; off < len(data); off += step {
			p.Write(data[off:min(off+step, len(data))], now, emit)
			if chunk&0x8000 != 0 {
				p.Flush(now, emit)
			}
		}
		p.Flush(now, emit)
		ParseTimeSEI(data)
		ParseSPS(data)
	})
}
