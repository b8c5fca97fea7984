package source

import (
	"errors"
	"sync"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/camfeed/camfeed/internal/h264"
)

// RTPH264 turns H.264 RTP packets (RFC 6184) into whole access units for
// a sink: for the RTSP source, and for RTSP publishers.
//
// Only whole access units reach the sink: the RTP decoder holds a picture
// until its last packet (the marker bit), so a sender that hangs up
// mid-picture leaves nothing half-written behind. After a lost packet or
// a broken picture nothing is passed on until the next keyframe, so the
// feed never holds a picture whose reference is missing. Keyframes get the
// SDP's SPS/PPS in front when the sender has them only out of band, as
// every keyframe in a hub must carry them.
type RTPH264 struct {
	dec      *rtph264.Decoder
	sink     Sink
	sps, pps []byte
	needKey  bool
	nalus    [][]byte

	mu           sync.Mutex // orders Packet against Stop
	stopped      bool
	lossy        bool
	units, bytes uint64
}

// Stats returns the access units and bytes (Annex-B size) written so far.
func (d *RTPH264) Stats() (units, bytes uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.units, d.bytes
}

// NewRTPH264 returns a depacketizer for forma (whose SPS and PPS, from the
// SDP, may be nil) writing to sink.
func NewRTPH264(forma *format.H264, sink Sink) (*RTPH264, error) {
	dec, err := forma.CreateDecoder()
	if err != nil {
		return nil, err
	}
	d := &RTPH264{dec: dec, sink: sink, needKey: true}
	if len(forma.SPS) > 0 && len(forma.PPS) > 0 {
		d.sps = append([]byte(nil), forma.SPS...)
		d.pps = append([]byte(nil), forma.PPS...)
	}
	return d, nil
}

// Lost tells that packets went missing (UDP): what follows is dropped
// up to the next keyframe.
func (d *RTPH264) Lost() {
	d.mu.Lock()
	d.lossy = true
	d.mu.Unlock()
}

// Stop makes sure nothing more reaches the sink.
func (d *RTPH264) Stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
}

// Packet takes the next RTP packet. Calls must not overlap.
func (d *RTPH264) Packet(pkt *rtp.Packet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	if d.lossy {
		d.lossy, d.needKey = false, true
	}
	au, err := d.dec.Decode(pkt)
	if err != nil {
		if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
			d.needKey = true
		}
		return
	}
	key, hasSPS, hasPPS := false, false, false
	for _, n := range au {
		switch h264.TypeOf(n) {
		case h264.NALUTypeIDR:
			key = true
		case h264.NALUTypeSPS:
			hasSPS = true
			d.sps = append(d.sps[:0], n...)
		case h264.NALUTypePPS:
			hasPPS = true
			d.pps = append(d.pps[:0], n...)
		}
	}
	if d.needKey && !key {
		return
	}
	d.needKey = false
	if key && (!hasSPS || !hasPPS) {
		d.nalus = d.nalus[:0]
		if !hasSPS && d.sps != nil {
			d.nalus = append(d.nalus, d.sps)
		}
		if !hasPPS && d.pps != nil {
			d.nalus = append(d.nalus, d.pps)
		}
		au = append(d.nalus, au...)
		d.nalus = au[:0]
	}
	d.sink.WriteAU(au)
	d.units++
	for _, n := range au {
		d.bytes += uint64(4 + len(n))
	}
}
