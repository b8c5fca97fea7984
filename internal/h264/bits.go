package h264

// bitReader reads an RBSP most significant bit first.
type bitReader struct {
	buf []byte
	pos int // in bits
}

func (r *bitReader) bit() (uint32, bool) {
	if r.pos >= len(r.buf)*8 {
		return 0, false
	}
	b := uint32(r.buf[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return b, true
}

// ue reads an unsigned Exp-Golomb code (9.1).
func (r *bitReader) ue() (uint32, bool) {
	zeros := 0
	for {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		if b == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			return 0, false
		}
	}
	var v uint32
	for i := 0; i < zeros; i++ {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return (1<<zeros - 1) + v, true
}
