package h264

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"
)

// TimeUUID identifies camfeed's time-stamp SEI (H.264 Annex D.1.7,
// user_data_unregistered, payloadType 5). It is the 16 ASCII bytes
// "camfeedtimecode1", so it is easy to spot in a hex dump.
var TimeUUID = [16]byte{'c', 'a', 'm', 'f', 'e', 'e', 'd', 't', 'i', 'm', 'e', 'c', 'o', 'd', 'e', '1'}

// TimeKind says which clock a time-stamp SEI carries.
type TimeKind byte

const (
	// TimeCapture is when the camera (or the test pattern) captured the frame.
	TimeCapture TimeKind = 1
	// TimeIngest is when camfeed received the last byte of the access unit.
	TimeIngest TimeKind = 2
)

// timePayloadSize is UUID(16) + kind(1) + Unix microseconds (8, big-endian).
const timePayloadSize = 16 + 1 + 8

// ErrNoTimeSEI is returned by ParseTimeSEI for a NAL unit that is not a
// camfeed time-stamp SEI.
var ErrNoTimeSEI = errors.New("h264: not a camfeed time SEI")

// AppendTimeSEI appends a complete SEI NAL unit (header byte included, no
// start code) carrying t to dst. The payload layout is documented in
// docs/TIMECODE.md. Emulation prevention bytes are inserted as 7.4.1 needs.
func AppendTimeSEI(dst []byte, kind TimeKind, t time.Time) []byte {
	var raw [2 + timePayloadSize + 1]byte
	raw[0] = 5 // payloadType: user_data_unregistered
	raw[1] = timePayloadSize
	copy(raw[2:], TimeUUID[:])
	raw[18] = byte(kind)
	binary.BigEndian.PutUint64(raw[19:], uint64(t.UnixMicro()))
	raw[27] = 0x80 // rbsp_trailing_bits
	dst = append(dst, byte(NALUTypeSEI))
	return AppendEmulationPrevention(dst, raw[:])
}

// ParseTimeSEI reads the first camfeed time stamp in an SEI NAL unit
// (header byte included). Other SEI messages before it are skipped where
// they lie, without copying: an encoder's SEI can be kilobytes (user data,
// padding), and this runs for every SEI of every frame.
func ParseTimeSEI(nalu []byte) (TimeKind, time.Time, error) {
	if len(nalu) < 2 || NALUType(nalu[0]&0x1f) != NALUTypeSEI {
		return 0, time.Time{}, ErrNoTimeSEI
	}
	r := rbspReader{b: nalu[1:]}
	for len(r.b) > 1 {
		ptype, ok := r.seiNumber()
		if !ok {
			break
		}
		psize, ok := r.seiNumber()
		if !ok {
			break
		}
		if ptype != 5 || psize < timePayloadSize {
			if !r.skip(psize) {
				break
			}
			continue
		}
		var p [timePayloadSize]byte
		if !r.read(p[:]) {
			break
		}
		if [16]byte(p[:16]) == TimeUUID {
			us := int64(binary.BigEndian.Uint64(p[17:25]))
			return TimeKind(p[16]), time.UnixMicro(us), nil
		}
		if !r.skip(psize - timePayloadSize) {
			break
		}
	}
	return 0, time.Time{}, ErrNoTimeSEI
}

// rbspReader reads the RBSP of a NAL unit's payload byte by byte, dropping
// emulation prevention bytes (7.4.1) as it goes.
type rbspReader struct {
	b     []byte
	zeros int
}

func (r *rbspReader) next() (byte, bool) {
	for len(r.b) > 0 {
		c := r.b[0]
		r.b = r.b[1:]
		if r.zeros >= 2 && c == 3 {
			r.zeros = 0
			continue
		}
		if c == 0 {
			r.zeros++
		} else {
			r.zeros = 0
		}
		return c, true
	}
	return 0, false
}

// skip drops n RBSP bytes. A stretch with no emulation prevention byte
// in it is dropped at once, found with bytes.Index: an encoder's SEI
// payload can be kilobytes, and this runs for every SEI of every frame.
func (r *rbspReader) skip(n int) bool {
	for n > 0 {
		if r.zeros > 0 {
			// Just after a zero byte, a 03 may already be an emulation
			// prevention byte: step until the count is clear.
			if _, ok := r.next(); !ok {
				return false
			}
			n--
			continue
		}
		// With no zeros counted, the next emulation prevention byte is
		// the 03 of the first 00 00 03, and all before it is RBSP.
		if i := bytes.Index(r.b, emulation); i >= 0 && i+2 <= n {
			r.b = r.b[i+3:]
			n -= i + 2
			continue
		}
		if len(r.b) < n {
			return false
		}
		for _, c := range r.b[max(0, n-2):n] {
			if c == 0 {
				r.zeros++
			} else {
				r.zeros = 0
			}
		}
		r.b = r.b[n:]
		return true
	}
	return true
}

// emulation is a zero pair and the emulation prevention byte after it.
var emulation = []byte{0, 0, 3}

func (r *rbspReader) read(p []byte) bool {
	for i := range p {
		c, ok := r.next()
		if !ok {
			return false
		}
		p[i] = c
	}
	return true
}

// seiNumber reads an SEI payloadType/payloadSize (7.3.2.3.1: a run of 0xFF
// bytes plus a last byte). ok is false when the NAL unit ends first or the
// value is absurd.
func (r *rbspReader) seiNumber() (v int, ok bool) {
	for {
		c, ok := r.next()
		if !ok {
			return 0, false
		}
		v += int(c)
		if c != 0xff {
			return v, true
		}
		if v > 1<<20 {
			return 0, false
		}
	}
}

// AppendEmulationPrevention appends rbsp to dst with an emulation_prevention
// byte (0x03) after every two zero bytes that precede a byte <= 3 (7.4.1).
func AppendEmulationPrevention(dst, rbsp []byte) []byte {
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			dst = append(dst, 3)
			zeros = 0
		}
		dst = append(dst, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return dst
}

// RemoveEmulationPrevention appends nal payload bytes to dst without the
// emulation_prevention bytes, giving the RBSP.
func RemoveEmulationPrevention(dst, nal []byte) []byte {
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		dst = append(dst, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return dst
}
