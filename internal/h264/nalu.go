package h264

// NALUType is nal_unit_type (Table 7-1).
type NALUType uint8

// The NAL unit types camfeed looks at.
const (
	NALUTypeNonIDR    NALUType = 1
	NALUTypeDataPartA NALUType = 2
	NALUTypeIDR       NALUType = 5
	NALUTypeSEI       NALUType = 6
	NALUTypeSPS       NALUType = 7
	NALUTypePPS       NALUType = 8
	NALUTypeAUD       NALUType = 9
	NALUTypeEndSeq    NALUType = 10
	NALUTypeEndStream NALUType = 11
	NALUTypeFiller    NALUType = 12
)

// TypeOf returns the type of a NAL unit (first byte is the header).
func TypeOf(nalu []byte) NALUType {
	if len(nalu) == 0 {
		return 0
	}
	return NALUType(nalu[0] & 0x1f)
}

// IsVCL reports whether t carries slice data of a primary coded picture.
func (t NALUType) IsVCL() bool { return t >= 1 && t <= 5 }
