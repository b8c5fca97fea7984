package testsrc

import "bytes"

// bitWriter writes the RBSP of one NAL unit, most significant bit first,
// straight into NAL unit form: it inserts emulation_prevention_three_byte
// (7.4.1) as whole bytes are completed, so no second pass over the slice is
// needed. Reset it with a buffer that already holds the NAL header byte.
type bitWriter struct {
	buf   []byte
	acc   uint64 // pending bits, right-aligned
	n     uint   // number of pending bits in acc, always < 8 between calls
	zeros int    // zero bytes at the end of buf, for emulation prevention
}

func (w *bitWriter) reset(buf []byte) {
	w.buf, w.acc, w.n, w.zeros = buf, 0, 0, 0
}

// putByte appends one RBSP byte, preceded by 0x03 when it would otherwise
// complete a start-code-like pattern 00 00 0x (x <= 3).
func (w *bitWriter) putByte(c byte) {
	if w.zeros >= 2 && c <= 3 {
		w.buf = append(w.buf, 3)
		w.zeros = 0
	}
	w.buf = append(w.buf, c)
	if c == 0 {
		w.zeros++
	} else {
		w.zeros = 0
	}
}

// u writes the n low bits of v (u(n) in 7.2); n is at most 32.
func (w *bitWriter) u(n uint, v uint32) {
	w.acc = w.acc<<n | uint64(v)&(1<<n-1)
	w.n += n
	for w.n >= 8 {
		w.n -= 8
		w.putByte(byte(w.acc >> w.n))
	}
}

func (w *bitWriter) flag(b bool) {
	if b {
		w.u(1, 1)
	} else {
		w.u(1, 0)
	}
}

// ue writes an unsigned Exp-Golomb code (9.1): M zeros, then the M+1 bits
// of v+1, where M is the bit length of v+1 minus one. v must be below 1<<31,
// which every syntax element camfeed writes is by far.
func (w *bitWriter) ue(v uint32) {
	x := uint64(v) + 1
	m := uint(0)
	for x>>(m+1) != 0 {
		m++
	}
	if 2*m+1 <= 32 {
		w.u(2*m+1, uint32(x))
		return
	}
	w.u(m, 0)
	w.u(m+1, uint32(x))
}

// se writes a signed Exp-Golomb code (9.1.1, Table 9-3): k > 0 maps to
// 2k-1 and k <= 0 to -2k.
func (w *bitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*int64(v) - 1))
	} else {
		w.ue(uint32(-2 * int64(v)))
	}
}

func (w *bitWriter) byteAligned() bool { return w.n == 0 }

// alignZero writes zero bits up to the next byte boundary
// (pcm_alignment_zero_bit).
func (w *bitWriter) alignZero() {
	if w.n != 0 {
		w.u(8-w.n, 0)
	}
}

// bytes writes p, which must start on a byte boundary. Runs without a zero
// byte cannot need emulation prevention once the writer has no pending
// zero bytes, so they are copied whole.
func (w *bitWriter) bytes(p []byte) {
	for len(p) > 0 {
		if w.zeros > 0 {
			w.putByte(p[0])
			p = p[1:]
			continue
		}
		i := bytes.IndexByte(p, 0)
		if i < 0 {
			w.buf = append(w.buf, p...)
			return
		}
		w.buf = append(w.buf, p[:i]...)
		w.putByte(0)
		p = p[i+1:]
	}
}

// trailing writes rbsp_trailing_bits (7.3.2.11) and returns the finished
// NAL unit. The stop bit makes the last byte non-zero, so no
// cabac_zero_word handling is needed.
func (w *bitWriter) trailing() []byte {
	w.u(1, 1)
	w.alignZero()
	return w.buf
}
