package mse

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
)

// clockRate is the track's time scale: 90 kHz, as RTP uses, so a frame
// interval at any common rate is a whole number of ticks.
const clockRate = 90000

// codecString is the RFC 6381 codecs parameter for MediaSource.
func codecString(p hub.Params) string {
	return "avc1." + p.Info.ProfileLevelID()
}

// initSegment returns the fMP4 initialisation segment (ftyp+moov) for p.
func initSegment(p hub.Params) ([]byte, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{
		ID:        1,
		TimeScale: clockRate,
		Codec:     &codecs.H264{SPS: p.SPS, PPS: p.PPS},
	}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("mse: init segment: %w", err)
	}
	return buf.Bytes(), nil
}

// muxer turns access units into fMP4 fragments, one per unit, so a
// browser can show a picture as soon as it arrives instead of waiting for
// a segment. It is a pure state machine: no I/O, no clock of its own.
//
// Decode time follows the time each unit reached camfeed, so the media
// timeline never drifts from the wall clock; skipped units leave a gap
// that the player steps over. A unit's duration is not known until the
// next one arrives, and waiting for it would cost a frame of latency, so
// each sample gets the recent average interval instead: small overlaps or
// gaps of jitter size, which MediaSource tolerates.
type muxer struct {
	seq      uint32
	start    time.Time // Received of the first unit: decode time 0
	started  bool
	lastDTS  uint64
	prevRecv time.Time
	interval float64 // ticks, moving average

	sample fmp4.Sample
	track  fmp4.PartTrack
	part   fmp4.Part
	avcc   []byte
	buf    seekablebuffer.Buffer
}

func newMuxer(fps float64) *muxer {
	m := &muxer{interval: clockRate / 30}
	if fps > 0 && fps <= 240 {
		m.interval = clockRate / fps
	}
	m.track.ID = 1
	m.track.Samples = []*fmp4.Sample{&m.sample}
	m.part.Tracks = []*fmp4.PartTrack{&m.track}
	return m
}

// fragment returns the moof+mdat for au. The bytes are valid until the
// next call.
func (m *muxer) fragment(au *h264.AccessUnit) ([]byte, error) {
	if !m.started {
		m.start, m.prevRecv, m.started = au.Received, au.Received, true
	}
	dts := uint64(0)
	if d := au.Received.Sub(m.start); d > 0 {
		dts = uint64(d) * clockRate / uint64(time.Second)
	}
	if m.seq > 0 {
		if dts <= m.lastDTS {
			dts = m.lastDTS + 1
		}
		m.observe(au.Received.Sub(m.prevRecv))
	}
	m.prevRecv = au.Received
	m.lastDTS = dts
	m.seq++
	return m.marshal(au, dts, m.seq)
}

// observe updates the average frame interval with the time between two
// units. Units that arrive in a burst (a skip, a catch-up) do not say
// anything about the frame rate.
func (m *muxer) observe(d time.Duration) {
	if gap := float64(d) * clockRate / float64(time.Second); gap > m.interval/4 && gap < 4*m.interval {
		m.interval += (gap - m.interval) / 8
	}
}

// marshal returns the moof+mdat of au at decode time dts with sequence
// number seq. The bytes are valid until the next call.
func (m *muxer) marshal(au *h264.AccessUnit, dts uint64, seq uint32) ([]byte, error) {
	m.avcc = m.avcc[:0]
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case h264.NALUTypeAUD, h264.NALUTypeFiller:
			continue
		}
		m.avcc = binary.BigEndian.AppendUint32(m.avcc, uint32(len(n)))
		m.avcc = append(m.avcc, n...)
	}
	m.sample = fmp4.Sample{
		Duration:        uint32(m.interval + 0.5),
		IsNonSyncSample: !au.Keyframe,
		Payload:         m.avcc,
	}
	m.track.BaseTime = dts
	m.part.SequenceNumber = seq
	m.buf.Reset()
	if err := m.part.Marshal(&m.buf); err != nil {
		return nil, fmt.Errorf("mse: fragment: %w", err)
	}
	return m.buf.Bytes(), nil
}
