package h264

import (
	"errors"
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Info is what viewers and the status page need to know from an SPS.
type Info struct {
	Width, Height int
	FPS           float64 // from VUI timing info; 0 when the SPS has none
	ProfileIDC    uint8
	ConstraintSet uint8 // constraint_set0..5 flags, as in profile-level-id
	LevelIDC      uint8
	// Log2MaxFrameNum is the width of frame_num in slice headers.
	Log2MaxFrameNum int
}

// ErrBadSPS is returned for an SPS that cannot be parsed.
var ErrBadSPS = errors.New("h264: bad SPS")

// ParseSPS decodes the parts of a sequence parameter set (7.3.2.1.1) that
// camfeed reports. nalu includes the NAL header byte.
func ParseSPS(nalu []byte) (Info, error) {
	if TypeOf(nalu) != NALUTypeSPS || len(nalu) < 4 {
		return Info{}, ErrBadSPS
	}
	var s mch264.SPS
	if err := s.Unmarshal(nalu); err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrBadSPS, err)
	}
	w, h := s.Width(), s.Height()
	if w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return Info{}, fmt.Errorf("%w: size %dx%d", ErrBadSPS, w, h)
	}
	return Info{
		Width: w, Height: h, FPS: s.FPS(),
		ProfileIDC: nalu[1], ConstraintSet: nalu[2], LevelIDC: nalu[3],
		Log2MaxFrameNum: int(s.Log2MaxFrameNumMinus4) + 4,
	}, nil
}

// ProfileLevelID is the 6-hex-digit profile-level-id of RFC 6184 §8.1.
func (i Info) ProfileLevelID() string {
	return fmt.Sprintf("%02x%02x%02x", i.ProfileIDC, i.ConstraintSet, i.LevelIDC)
}

// ProfileName names the profile as people know it.
func (i Info) ProfileName() string {
	switch i.ProfileIDC {
	case 66:
		if i.ConstraintSet&0x40 != 0 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4"
	}
	return fmt.Sprintf("profile %d", i.ProfileIDC)
}

// Level is the level as written, e.g. "4.1".
func (i Info) Level() string {
	return fmt.Sprintf("%d.%d", i.LevelIDC/10, i.LevelIDC%10)
}

// FrameNum reads frame_num from a slice NAL unit's header (7.3.3), whose
// width the SPS gives. A decoder needs frame_num to go up by one from
// reference picture to reference picture: a jump outside an IDR means a
// picture is missing and what follows is corrupt until the next IDR.
func FrameNum(nalu []byte, info Info) (uint32, bool) {
	if !TypeOf(nalu).IsVCL() || info.Log2MaxFrameNum < 4 {
		return 0, false
	}
	var buf [32]byte
	head := nalu[1:min(len(nalu), 24)]
	r := bitReader{buf: RemoveEmulationPrevention(buf[:0], head)}
	for range 3 { // first_mb_in_slice, slice_type, pic_parameter_set_id
		if _, ok := r.ue(); !ok {
			return 0, false
		}
	}
	var v uint32
	for range info.Log2MaxFrameNum {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return v, true
}
