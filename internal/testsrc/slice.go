package testsrc

import (
	"bytes"
	"encoding/binary"
)

// How the pictures are coded
//
// The pattern is grayscale, so every chroma sample is 128, and the stream
// is lossless by construction; only three macroblock codings are used:
//
//   - I_PCM (mb_type 25 in I slices, 30 in P slices) sends the 384 samples
//     as they are. It is used for every macroblock with detail.
//   - I_16x16_2_0_0 (mb_type 3 in I slices, 8 in P slices): DC prediction,
//     chroma DC prediction, no residual. It is used for a macroblock whose
//     luma is all 128 when the samples that DC prediction reads (8.3.3.3:
//     the row above and the column to the left, where available) are 128
//     too. The prediction is then (16*128*2+16)>>5, (16*128+8)>>4 or
//     1<<7, all exactly 128, and chroma likewise (8.3.4.3). flatMB checks
//     the condition on the source picture, which the decoder reproduces
//     exactly, so the rule holds by induction in raster order.
//   - P_Skip copies the co-located macroblock of the previous picture.
//     Its motion vector is predicted (8.4.1.1) from neighbours that are
//     either P_Skip with a zero vector or intra (refIdx -1, vector 0), so
//     by induction it is always zero: a P_Skip is an exact copy.
//
// The loop filter is off (disable_deblocking_filter_idc 1), so decoded
// pictures equal the source bit for bit, and so do the references.

// mbKind is how a macroblock of the current picture was coded. The
// coeff_token of the next intra macroblock depends on it (9.2.1).
type mbKind uint8

const (
	mbSkip mbKind = iota
	mbFlat        // I_16x16, DC prediction, no residual
	mbPCM
)

// mb_type values (Tables 7-11 and 7-13): P slices number the intra types
// after the 5 inter ones.
const (
	mbTypeI16x16DC = 3
	mbTypeIPCM     = 25
	mbTypePIntra   = 5
)

// Slice types (Table 7-6); +5 says every slice of the picture has the type.
const (
	sliceTypeP = 5
	sliceTypeI = 7
)

const gray8 = 0x8080808080808080

// chroma128 is the chroma of every I_PCM macroblock: Cb then Cr, 8x8 each.
var chroma128 = bytes.Repeat([]byte{gray}, 128)

// is128 reports whether every luma sample of macroblock (x, y) is 128.
func is128(p []byte, stride, x, y int) bool {
	o := y*16*stride + x*16
	for r := 0; r < 16; r++ {
		row := p[o : o+16]
		if binary.LittleEndian.Uint64(row) != gray8 || binary.LittleEndian.Uint64(row[8:]) != gray8 {
			return false
		}
		o += stride
	}
	return true
}

// flatMB reports whether macroblock (x, y) can be coded as I_16x16 DC with
// no residual and still decode exactly: it is all 128, and so are the
// bottom row of the macroblock above and the right column of the one to
// its left, where those exist.
func flatMB(p []byte, stride, x, y int) bool {
	if !is128(p, stride, x, y) {
		return false
	}
	if y > 0 {
		above := p[(y*16-1)*stride+x*16:]
		if binary.LittleEndian.Uint64(above) != gray8 || binary.LittleEndian.Uint64(above[8:]) != gray8 {
			return false
		}
	}
	if x > 0 {
		o := y*16*stride + x*16 - 1
		for r := 0; r < 16; r++ {
			if p[o] != gray {
				return false
			}
			o += stride
		}
	}
	return true
}

// sliceHeader writes slice_header() (7.3.3) for the one slice of a picture.
func (g *Generator) sliceHeader(idr bool, frameNum uint32) {
	w := &g.w
	w.ue(0) // first_mb_in_slice
	if idr {
		w.ue(sliceTypeI)
	} else {
		w.ue(sliceTypeP)
	}
	w.ue(0) // pic_parameter_set_id
	w.u(g.seq.log2MaxFrameNum, frameNum)
	if idr {
		w.ue(g.idrPicID)
	} else {
		w.flag(false) // num_ref_idx_active_override_flag
		w.flag(false) // ref_pic_list_modification_flag_l0
	}
	// dec_ref_pic_marking() (7.3.3.3): nal_ref_idc is never 0.
	if idr {
		w.flag(false) // no_output_of_prior_pics_flag
		w.flag(false) // long_term_reference_flag
	} else {
		w.flag(false) // adaptive_ref_pic_marking_mode_flag: sliding window
	}
	w.se(0) // slice_qp_delta
	w.ue(1) // disable_deblocking_filter_idc: filter off
}

// encodeIDR appends the IDR slice of g.cur to dst.
func (g *Generator) encodeIDR(dst []byte) []byte {
	g.w.reset(append(dst, nalHeaderIDR))
	g.sliceHeader(true, 0)
	for y := 0; y < g.seq.hMbs; y++ {
		for x := 0; x < g.seq.wMbs; x++ {
			g.intraMB(x, y, 0)
		}
	}
	return g.w.trailing()
}

// encodeP appends a P slice of g.cur, predicted from g.prev, to dst:
// macroblocks that did not change are skipped, the others are coded intra.
func (g *Generator) encodeP(dst []byte, frameNum uint32) []byte {
	g.w.reset(append(dst, nalHeaderP))
	g.sliceHeader(false, frameNum)
	stride := g.cfg.Width
	skipRun := uint32(0)
	for y := 0; y < g.seq.hMbs; y++ {
		changed := g.changed
		clear(changed)
		for r := y * 16; r < y*16+16; r++ {
			a, b := g.cur[r*stride:(r+1)*stride], g.prev[r*stride:(r+1)*stride]
			if bytes.Equal(a, b) {
				continue
			}
			for x := range changed {
				if !changed[x] && !bytes.Equal(a[x*16:x*16+16], b[x*16:x*16+16]) {
					changed[x] = true
				}
			}
		}
		for x, c := range changed {
			if !c {
				g.kind[y*g.seq.wMbs+x] = mbSkip
				skipRun++
				continue
			}
			g.w.ue(skipRun) // mb_skip_run (7.3.4)
			skipRun = 0
			g.intraMB(x, y, mbTypePIntra)
		}
	}
	if skipRun > 0 {
		g.w.ue(skipRun)
	}
	return g.w.trailing()
}

// intraMB writes macroblock_layer() (7.3.5) for macroblock (x, y) of g.cur
// as I_16x16 DC or I_PCM; typeOffset is 0 in I slices and 5 in P slices.
func (g *Generator) intraMB(x, y int, typeOffset uint32) {
	w := &g.w
	stride := g.cfg.Width
	i := y*g.seq.wMbs + x
	if flatMB(g.cur, stride, x, y) {
		g.kind[i] = mbFlat
		w.ue(typeOffset + mbTypeI16x16DC)
		w.ue(0) // intra_chroma_pred_mode: DC
		w.se(0) // mb_qp_delta
		// residual: Intra16x16DCLevel with no coefficients. The AC and
		// chroma blocks are absent (coded_block_pattern 0 in mb_type).
		coeffTokenNone(w, g.nC(x, y))
		return
	}
	g.kind[i] = mbPCM
	w.ue(typeOffset + mbTypeIPCM)
	w.alignZero() // pcm_alignment_zero_bit
	o := y*16*stride + x*16
	for r := 0; r < 16; r++ {
		w.bytes(g.cur[o : o+16])
		o += stride
	}
	w.bytes(chroma128)
}

// nC returns the coeff_token table selector for luma block 0 of macroblock
// (x, y) (9.2.1): the mean of the counts in the blocks to its left and
// above. Skipped and flat neighbours count 0 coefficients, I_PCM ones 16;
// neighbours outside the picture are left out.
func (g *Generator) nC(x, y int) int {
	count := func(k mbKind) int {
		if k == mbPCM {
			return 16
		}
		return 0
	}
	i := y*g.seq.wMbs + x
	switch {
	case x > 0 && y > 0:
		return (count(g.kind[i-1]) + count(g.kind[i-g.seq.wMbs]) + 1) >> 1
	case x > 0:
		return count(g.kind[i-1])
	case y > 0:
		return count(g.kind[i-g.seq.wMbs])
	}
	return 0
}

// coeffTokenNone writes coeff_token for TotalCoeff 0, TrailingOnes 0
// (Table 9-5), whose code depends on nC.
func coeffTokenNone(w *bitWriter, nC int) {
	switch {
	case nC < 2:
		w.u(1, 0b1)
	case nC < 4:
		w.u(2, 0b11)
	case nC < 8:
		w.u(4, 0b1111)
	default:
		w.u(6, 0b000011)
	}
}
