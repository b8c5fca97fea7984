package h264

import "time"

// AccessUnit is one coded picture together with everything a decoder needs
// in front of it (7.4.1.2.3). Once published it is immutable and shared by
// every viewer: nothing may write to Data or NALUs after the parser emits it.
type AccessUnit struct {
	// Data is the whole access unit in Annex-B form, each NAL unit behind a
	// 4-byte start code, ready to write to a raw H.264 viewer as is. It
	// ends with an access unit delimiter (see trailingAUD).
	Data []byte
	// NALUs are the NAL units without start codes; they are sub-slices of
	// Data, so packetising outputs (RTSP, WebRTC, MP4) copy nothing.
	NALUs [][]byte
	// Keyframe is true for an IDR access unit. The parser guarantees that a
	// keyframe carries SPS and PPS, so a viewer can start decoding on it.
	Keyframe bool
	// Received is when camfeed had the last byte of the access unit. It has
	// a monotonic reading and is the media clock for outputs that need one.
	Received time.Time
	// Captured is the capture time that the source put in the stream (the
	// camfeed time SEI), or the zero Time when the source gave none.
	Captured time.Time

	nalus [8][]byte // backing array for NALUs, to save an allocation
}

// Size is the number of bytes the access unit holds in memory.
func (au *AccessUnit) Size() int { return len(au.Data) }
