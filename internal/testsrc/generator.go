package testsrc

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// Generator makes the test pattern's H.264 stream, one access unit per
// call to Next. It is not safe for concurrent use, except RequestKeyframe.
type Generator struct {
	cfg Config
	lay layout
	seq seqParams

	sps, pps []byte
	// base holds the static pattern; cur and prev are the luma planes of
	// this picture and the last one (coded size, stride = width). The
	// decoder's copy of prev is bit-exact, which is what makes P_Skip a
	// lossless copy.
	base, cur, prev []byte
	kind            []mbKind // how each macroblock of the picture being coded was coded
	changed         []bool   // per macroblock of one row: differs from prev

	sei, slice []byte
	w          bitWriter
	out        [4][]byte

	frame    int64 // frames generated so far
	gop      int   // frames since the last IDR; starts at Intra, so the first frame is one
	idrPicID uint32
	forceIDR atomic.Bool
}

// New returns a generator for cfg (zero fields take their defaults).
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Generator{cfg: cfg, lay: newLayout(cfg.Width, cfg.Height), gop: cfg.Intra}
	codedH := align16(cfg.Height)
	g.seq = seqParams{
		wMbs:            cfg.Width / 16,
		hMbs:            codedH / 16,
		cropBottom:      codedH - cfg.Height,
		fps:             cfg.FPS,
		log2MaxFrameNum: 4,
	}
	// frame_num restarts at every IDR; a MaxFrameNum of at least the IDR
	// period means it never wraps, which makes streams easy to read in a
	// dump. Wrapping would be legal too.
	for 1<<g.seq.log2MaxFrameNum < cfg.Intra {
		g.seq.log2MaxFrameNum++
	}
	n := cfg.Width * codedH
	g.base, g.cur, g.prev = make([]byte, n), make([]byte, n), make([]byte, n)
	g.lay.drawBase(g.base, cfg.Width)
	g.kind = make([]mbKind, g.seq.wMbs*g.seq.hMbs)
	g.changed = make([]bool, g.seq.wMbs)
	rate, idrBits := g.bitRateBound()
	g.seq.levelIDC = chooseLevel(g.seq.wMbs, g.seq.hMbs, cfg.FPS, rate, idrBits)
	g.sps = appendSPS(nil, g.seq)
	g.pps = appendPPS(nil)
	return g, nil
}

// Config returns the configuration in use, defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// SPS returns the sequence parameter set NAL unit (header byte first, no
// start code). It never changes; the caller must not modify it.
func (g *Generator) SPS() []byte { return g.sps }

// PPS returns the picture parameter set NAL unit, like SPS.
func (g *Generator) PPS() []byte { return g.pps }

// RequestKeyframe makes the next frame an IDR, and the IDR period restart
// from it. It is safe to call from any goroutine.
func (g *Generator) RequestKeyframe() { g.forceIDR.Store(true) }

// Next encodes the next frame (frame numbers count from 0) as captured at
// t and returns its NAL units in decode order, without start codes: SPS,
// PPS, SEI and the IDR slice for a keyframe, SEI and a P slice otherwise.
// The SEI carries t (h264.AppendTimeSEI, microseconds) and the picture
// carries it as a pixel time code (milliseconds); the clock in the picture
// shows t in t's location.
//
// The returned slices point into buffers that the next call reuses:
// callers that keep them must copy. In steady state Next allocates nothing.
func (g *Generator) Next(t time.Time) (nalus [][]byte, keyframe bool) {
	keyframe = g.gop >= g.cfg.Intra
	if g.forceIDR.Swap(false) {
		keyframe = true
	}
	if keyframe {
		g.gop = 0
	}
	copy(g.cur, g.base)
	g.lay.drawFrame(g.cur, g.cfg.Width, g.frame, t, g.cfg.FPS)
	g.sei = h264.AppendTimeSEI(g.sei[:0], h264.TimeCapture, t)
	if keyframe {
		g.slice = g.encodeIDR(g.slice[:0])
		g.idrPicID ^= 1
		g.out = [4][]byte{g.sps, g.pps, g.sei, g.slice}
		nalus = g.out[:4]
	} else {
		frameNum := uint32(g.gop) & (1<<g.seq.log2MaxFrameNum - 1)
		g.slice = g.encodeP(g.slice[:0], frameNum)
		g.out[0], g.out[1] = g.sei, g.slice
		nalus = g.out[:2]
	}
	g.cur, g.prev = g.prev, g.cur
	g.frame++
	g.gop++
	return nalus, keyframe
}

// AppendAnnexB appends each NAL unit to dst behind a 4-byte start code
// (00 00 00 01), giving an H.264 Annex B byte stream.
func AppendAnnexB(dst []byte, nalus [][]byte) []byte {
	for _, n := range nalus {
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, n...)
	}
	return dst
}

// String describes the stream, for logs: "testsrc 640x480@30 intra 30 level 3.0".
func (g *Generator) String() string {
	return fmt.Sprintf("testsrc %dx%d@%d intra %d level %d.%d", g.cfg.Width, g.cfg.Height, g.cfg.FPS, g.cfg.Intra, g.seq.levelIDC/10, g.seq.levelIDC%10)
}
