package h264

import "bytes"

var startCode3 = []byte{0, 0, 1}

// splitter cuts an Annex-B byte stream (B.1) into NAL units. It is fed
// arbitrary chunks: a start code, or a run of zero bytes, may be split
// across two writes. It allocates only when a NAL unit outgrows its buffer.
type splitter struct {
	maxNAL    int
	nal       []byte // the NAL unit being collected
	inNAL     bool   // a start code was seen and nal is being filled
	oversized bool   // the current NAL unit passed maxNAL and will be dropped
	zeros     int    // zero bytes held back: maybe the start of a start code

	garbage   uint64 // bytes outside any NAL unit
	oversizes uint64 // NAL units dropped for size
}

// write feeds p and calls emit for each NAL unit that p completes. The slice
// given to emit is only valid during the call. oversize is called instead of
// emit for a NAL unit that was dropped because it exceeded maxNAL.
func (s *splitter) write(p []byte, emit func([]byte), oversize func()) {
	for len(p) > 0 {
		if s.zeros > 0 {
			// Resolve zero bytes held back from the last write.
			lz := 0
			for lz < len(p) && p[lz] == 0 {
				lz++
			}
			if lz == len(p) {
				s.zeros += lz
				return
			}
			total := s.zeros
			s.zeros = 0
			if p[lz] == 1 && total+lz >= 2 {
				s.endNAL(emit, oversize)
				s.inNAL = true
				p = p[lz+1:]
				continue
			}
			s.appendZeros(total)
		}
		i := bytes.Index(p, startCode3)
		if i < 0 {
			tz := 0
			for tz < len(p) && p[len(p)-1-tz] == 0 {
				tz++
			}
			s.appendBytes(p[:len(p)-tz])
			s.zeros = tz
			return
		}
		end := i
		for end > 0 && p[end-1] == 0 {
			end-- // trailing_zero_8bits and the 4th byte of a start code
		}
		s.appendBytes(p[:end])
		s.endNAL(emit, oversize)
		s.inNAL = true
		p = p[i+3:]
	}
}

// flush ends the NAL unit being collected, as if a start code followed.
// Held-back zero bytes are dropped as trailing_zero_8bits.
func (s *splitter) flush(emit func([]byte), oversize func()) {
	s.zeros = 0
	s.endNAL(emit, oversize)
	s.inNAL = false
}

func (s *splitter) endNAL(emit func([]byte), oversize func()) {
	if !s.inNAL {
		return
	}
	switch {
	case s.oversized:
		s.oversizes++
		oversize()
	case len(s.nal) > 0:
		emit(s.nal)
	}
	s.nal = s.nal[:0]
	s.oversized = false
}

func (s *splitter) appendZeros(n int) {
	if !s.inNAL || s.oversized || len(s.nal)+n > s.maxNAL {
		for ; n > 0 && !s.oversized; n-- {
			s.appendBytes(startCode3[:1])
		}
		return
	}
	for ; n > 0; n-- {
		s.nal = append(s.nal, 0)
	}
}

func (s *splitter) appendBytes(b []byte) {
	if len(b) == 0 {
		return
	}
	if !s.inNAL {
		s.garbage += uint64(len(b))
		return
	}
	if s.oversized {
		return
	}
	if len(s.nal)+len(b) > s.maxNAL {
		s.oversized = true
		s.nal = s.nal[:0]
		return
	}
	s.nal = append(s.nal, b...)
}
