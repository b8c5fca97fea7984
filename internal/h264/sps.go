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
