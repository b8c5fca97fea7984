package clip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"

	"github.com/camfeed/camfeed/internal/mediatime"
)

// errMuxer means mediacommon's pmp4 writer did not behave as this file
// relies on (see WriteMP4); a test catches it on a dependency update.
var errMuxer = errors.New("clip: unexpected output from the pmp4 muxer")

// WriteMP4 writes the clip as a progressive MP4: ftyp, moov (the sample
// tables, computed from sizes alone), then mdat. It is seekable and starts
// playing before the download ends (faststart).
//
// Memory does not grow with the clip: mediacommon's pmp4 writer asks each
// sample for its payload just before writing it, and this writer answers
// by writing the sample straight from the shared access unit, one 4-byte
// length and one NAL unit at a time (Annex-B to AVCC), then handing back
// an empty payload. So no sample, and no clip, is ever copied whole; the
// cost per request is the sample tables, about 40 bytes a frame.
//
// size, when not nil, is called with the file's total length before the
// first byte is written, for a Content-Length header.
func (c *Clip) WriteMP4(w io.Writer, size func(int64)) error {
	mw := &mp4Writer{w: w, c: c}
	samples := make([]pmp4.Sample, len(c.units))
	ptrs := make([]*pmp4.Sample, len(c.units))
	for i, au := range c.units {
		n := c.sampleSize(au)
		mw.data += int64(n)
		samples[i] = pmp4.Sample{
			Duration:        c.durations[i],
			IsNonSyncSample: !au.Keyframe,
			PayloadSize:     uint32(n),
			GetPayload:      func() ([]byte, error) { return nil, mw.writeSample(i) },
		}
		ptrs[i] = &samples[i]
	}
	if mw.data > 1<<32-1-1<<20 {
		return fmt.Errorf("clip: %d bytes of video is too much for one MP4 box", mw.data)
	}
	mw.size = size
	p := pmp4.Presentation{Tracks: []*pmp4.Track{{
		ID:         1,
		TimeScale:  mediatime.Timescale,
		TimeOffset: -int32(c.skipTicks),
		Codec:      &codecs.H264{SPS: c.sps, PPS: c.pps},
		Samples:    ptrs,
	}}}
	if err := p.Marshal(mw); err != nil {
		return err
	}
	if mw.next != len(c.units) {
		return errMuxer
	}
	return nil
}

// mp4Writer sits between pmp4 and the destination. It fixes the header
// (fixHeader), and writes sample data as pmp4 asks for it.
type mp4Writer struct {
	w      io.Writer
	c      *Clip
	size   func(int64)
	data   int64 // mdat payload bytes
	header bool
	next   int // the sample pmp4 should ask for next
	len4   [4]byte
}

func (m *mp4Writer) Write(p []byte) (int, error) {
	if !m.header {
		// pmp4 writes ftyp and moov in one call (v2.9.3 Presentation.Marshal).
		if err := m.c.fixHeader(p); err != nil {
			return 0, err
		}
		m.header = true
		if m.size != nil {
			m.size(int64(len(p)) + 8 + m.data)
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	return m.w.Write(p)
}

func (m *mp4Writer) writeSample(i int) error {
	if !m.header || i != m.next {
		return errMuxer
	}
	m.next++
	au := m.c.units[i]
	for _, n := range au.NALUs {
		if m.c.inSampleEntry(n) {
			continue
		}
		binary.BigEndian.PutUint32(m.len4[:], uint32(len(n)))
		if _, err := m.w.Write(m.len4[:]); err != nil {
			return err
		}
		if _, err := m.w.Write(n); err != nil {
			return err
		}
	}
	return nil
}

// fixHeader corrects two fields that pmp4 v2.9.3 writes for a negative
// Track.TimeOffset, which it means for B-frame delay rather than for a
// leading cut: the edit's segment_duration (§8.6.6) must be the time
// shown, and the media duration in mdhd (§8.4.2) must be the sum of all
// sample durations, hidden ones included. tkhd and mvhd are right as
// written. Without a cut there is nothing to fix. It also checks that the
// buffer is the ftyp and moov boxes whole.
func (c *Clip) fixHeader(b []byte) error {
	ftyp, ok := findBox(b, "ftyp")
	if !ok || ftyp != 0 {
		return errMuxer
	}
	moov, ok := findBox(b, "moov")
	if !ok || moov+int(binary.BigEndian.Uint32(b[moov:])) != len(b) {
		return errMuxer
	}
	if c.skipTicks == 0 {
		return nil
	}
	elst, ok1 := findBox(b, "moov", "trak", "edts", "elst")
	mdhd, ok2 := findBox(b, "moov", "trak", "mdia", "mdhd")
	if !ok1 || !ok2 || elst+20 > len(b) || mdhd+28 > len(b) || b[elst+8] != 0 || b[mdhd+8] != 0 || binary.BigEndian.Uint32(b[elst+12:]) != 1 {
		return errMuxer
	}
	var media int64
	for _, d := range c.durations {
		media += int64(d)
	}
	const movieTimescale = 1000 // pmp4's mvhd timescale
	binary.BigEndian.PutUint32(b[elst+16:], uint32((media-c.skipTicks)*movieTimescale/mediatime.Timescale))
	binary.BigEndian.PutUint32(b[mdhd+24:], uint32(media))
	return nil
}

// findBox returns the offset of the box at path (32-bit sizes only, as
// pmp4 writes them), searching b from the top level.
func findBox(b []byte, path ...string) (int, bool) {
	off, end := 0, len(b)
	for depth, typ := range path {
		for {
			if off+8 > end {
				return 0, false
			}
			size := int(binary.BigEndian.Uint32(b[off:]))
			if size < 8 || off+size > end {
				return 0, false
			}
			if string(b[off+4:off+8]) == typ {
				if depth == len(path)-1 {
					return off, true
				}
				end = off + size
				off += 8
				break
			}
			off += size
		}
	}
	return 0, false
}
