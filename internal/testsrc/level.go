package testsrc

import "time"

// level is one row of Table A-1.
type level struct {
	idc     uint8
	maxMBPS int // macroblocks per second
	maxFS   int // macroblocks per frame
	maxBR   int // kbit/s; for Baseline the VCL bitrate limit is 1000*maxBR bit/s
	maxCPB  int // kbit; 1000*maxCPB bits for Baseline VCL
}

// levels lists Table A-1 without level 1b, which Constrained Baseline can
// only signal with constraint_set3_flag.
var levels = []level{
	{10, 1485, 99, 64, 175},
	{11, 3000, 396, 192, 500},
	{12, 6000, 396, 384, 1000},
	{13, 11880, 396, 768, 2000},
	{20, 11880, 396, 2000, 2000},
	{21, 19800, 792, 4000, 4000},
	{22, 20250, 1620, 4000, 4000},
	{30, 40500, 1620, 10000, 10000},
	{31, 108000, 3600, 14000, 14000},
	{32, 216000, 5120, 20000, 20000},
	{40, 245760, 8192, 20000, 25000},
	{41, 245760, 8192, 50000, 62500},
	{42, 522240, 8704, 50000, 62500},
	{50, 589824, 22080, 135000, 135000},
	{51, 983040, 36864, 240000, 240000},
	{52, 2073600, 36864, 240000, 240000},
}

// chooseLevel returns the lowest level_idc whose limits (A.3.1) hold for a
// picture of wMbs x hMbs macroblocks at fps, with a bit rate up to
// maxBitRate (bit/s) and a largest picture of maxPicBits. A.3.1 also caps
// each picture dimension at sqrt(8*MaxFS) macroblocks, which is what makes
// a 1920x64 picture need level 3.1. Sizes beyond every level get the
// highest one.
func chooseLevel(wMbs, hMbs, fps int, maxBitRate, maxPicBits int64) uint8 {
	fs := wMbs * hMbs
	for _, l := range levels {
		if fs <= l.maxFS && fs*fps <= l.maxMBPS &&
			wMbs*wMbs <= 8*l.maxFS && hMbs*hMbs <= 8*l.maxFS &&
			maxBitRate <= int64(l.maxBR)*1000 && maxPicBits <= int64(l.maxCPB)*1000 {
			return l.idc
		}
	}
	return levels[len(levels)-1].idc
}

// Bits of an I_PCM macroblock: 384 samples, mb_type, alignment and a
// share of skip runs.
const pcmBits = 384*8 + 32

// bitRateBound estimates, with room to spare, the stream's peak bit rate
// (bit/s) and the size of an IDR picture (bits), so that the level can
// cover them (MaxBR and MaxCPB in Table A-1). An IDR is measured: a frame
// with every digit drawn is counted as New would code it, plus 25%. For a
// P picture it counts the macroblocks of whatever changes more often than
// once a second: the low 11 bits of the time code, the seconds and
// milliseconds of the clock, the last two digits of the counter, and the
// square where it was and where it is. Rarer changes (the minute rolling
// over) add a few macroblocks to a single picture, which the coded picture
// buffer absorbs.
func (g *Generator) bitRateBound() (rate, idrBits int64) {
	const overhead = 2000 // slice header, SEI, skip runs
	wMbs, hMbs, stride := g.seq.wMbs, g.seq.hMbs, g.cfg.Width
	mbs := int64(wMbs * hMbs)
	l := &g.lay

	copy(g.cur, g.base)
	l.drawFrame(g.cur, stride, 88888888, time.Date(2088, 8, 8, 18, 58, 58, 888e6, time.UTC), g.cfg.FPS)
	var pcm int64
	for y := 0; y < hMbs; y++ {
		for x := 0; x < wMbs; x++ {
			if !flatMB(g.cur, stride, x, y) {
				pcm++
			}
		}
	}
	idrBits = (pcm*pcmBits + (mbs-pcm)*16 + overhead) * 5 / 4

	hot := make([]bool, mbs)
	mark := func(r rect) {
		for y := r.y / 16; y <= (r.y+r.h-1)/16; y++ {
			for x := r.x / 16; x <= (r.x+r.w-1)/16; x++ {
				hot[y*wMbs+x] = true
			}
		}
	}
	cols := stride / tcCell
	for k := 0; k < 11; k++ {
		i := len(tcStart) + tcTimeBits - 1 - k
		mark(rect{i % cols * tcCell, i / cols * tcCell, tcCell, tcCell})
	}
	char := func(b textBox, i int) rect { return rect{b.x + i*4*l.sx, b.y, 4 * l.sx, b.h} }
	if l.clock.w > 0 {
		for _, i := range [...]int{7, 9, 10, 11} { // S.mmm
			mark(char(l.clock, i))
		}
	}
	if l.counter.w > 0 {
		mark(char(l.counter, counterChars-2))
		mark(char(l.counter, counterChars-1))
	}
	var dyn int64
	for _, h := range hot {
		if h {
			dyn++
		}
	}
	if l.square > 0 {
		side := int64((l.square+14)/16 + 1) // most macroblocks a side can span
		dyn += 2 * side * side
	}
	pBits := min(dyn, mbs)*pcmBits + overhead
	n := int64(g.cfg.Intra)
	rate = (idrBits + (n-1)*pBits) * int64(g.cfg.FPS) / n
	return rate, idrBits
}
