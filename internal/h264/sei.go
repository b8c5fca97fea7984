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
// (header byte included). Other SEI messages before it are skipped.
func ParseTimeSEI(nalu []byte) (TimeKind, time.Time, error) {
	if len(nalu) < 2 || NALUType(nalu[0]&0x1f) != NALUTypeSEI {
		return 0, time.Time{}, ErrNoTimeSEI
	}
	var buf [256]byte
	rbsp := RemoveEmulationPrevention(buf[:0], nalu[1:])
	for len(rbsp) > 1 {
		ptype, n := seiNumber(rbsp)
		if n == 0 {
			break
		}
		rbsp = rbsp[n:]
		psize, n := seiNumber(rbsp)
		if n == 0 || len(rbsp)-n < psize {
			break
		}
		payload := rbsp[n : n+psize]
		rbsp = rbsp[n+psize:]
		if ptype == 5 && psize >= timePayloadSize && bytes.Equal(payload[:16], TimeUUID[:]) {
			us := int64(binary.BigEndian.Uint64(payload[17:25]))
			return TimeKind(payload[16]), time.UnixMicro(us), nil
		}
	}
	return 0, time.Time{}, ErrNoTimeSEI
}

// seiNumber reads an SEI payloadType/payloadSize (7.3.2.3.1: a run of 0xFF
// bytes plus a last byte). It returns the value and the bytes used, or 0
// bytes used when the buffer ends first.
func seiNumber(b []byte) (int, int) {
	v := 0
	for i, c := range b {
		v += int(c)
		if c != 0xff {
			return v, i + 1
		}
		if v > 1<<20 {
			return 0, 0
		}
	}
	return 0, 0
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
