package mse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
)

// fragment is one access unit as a moof+mdat, made once for every MSE
// viewer of a feed. Its decode time is on the feed's timeline. A viewer
// copies the moof (about a hundred bytes), puts its own sequence number
// and decode time in it, and sends the mdat as it is: the AVCC conversion
// and the MP4 marshalling are done once per picture, not once per viewer.
// Immutable once made.
type fragment struct {
	au    *h264.AccessUnit
	b     []byte
	moof  int    // b[:moof] is the moof box
	seqAt int    // mfhd sequence_number (ISO/IEC 14496-12 8.8.5)
	dtsAt int    // tfdt baseMediaDecodeTime, version 1: 64 bits (8.8.12)
	dts   uint64 // on the feed's timeline
}

var errLayout = errors.New("mse: unexpected fragment layout")

// locate finds the moof's size and the offsets of the fields a viewer
// rewrites, walking the boxes mediacommon wrote: moof { mfhd, traf { tfhd,
// tfdt, trun } }, mdat.
func (f *fragment) locate() error {
	box := func(b []byte, at int) (size int, typ string, ok bool) {
		if at+8 > len(b) {
			return 0, "", false
		}
		size = int(binary.BigEndian.Uint32(b[at:]))
		return size, string(b[at+4 : at+8]), size >= 8 && at+size <= len(b)
	}
	size, typ, ok := box(f.b, 0)
	if !ok || typ != "moof" {
		return errLayout
	}
	f.moof = size
	for at := 8; at < f.moof; {
		n, typ, ok := box(f.b, at)
		if !ok {
			return errLayout
		}
		switch typ {
		case "mfhd":
			f.seqAt = at + 12
		case "traf":
			for c := at + 8; c < at+n; {
				m, ctyp, ok := box(f.b, c)
				if !ok {
					return errLayout
				}
				if ctyp == "tfdt" {
					if f.b[c+8] != 1 {
						return errLayout
					}
					f.dtsAt = c + 12
				}
				c += m
			}
		}
		at += n
	}
	if f.seqAt == 0 || f.dtsAt == 0 {
		return errLayout
	}
	return nil
}

// header returns the moof for one viewer: its sequence number and decode
// time written into a copy, appended to dst.
func (f *fragment) header(dst []byte, seq uint32, dts uint64) []byte {
	dst = append(dst[:0], f.b[:f.moof]...)
	binary.BigEndian.PutUint32(dst[f.seqAt:], seq)
	binary.BigEndian.PutUint64(dst[f.dtsAt:], dts)
	return dst
}

// mdat is the part every viewer sends as it is.
func (f *fragment) mdat() []byte { return f.b[f.moof:] }

// fragmentSlots is how many recent fragments a feed keeps made: a second
// at 30 fps, so viewers a few frames apart share them.
const fragmentSlots = 32

// fragmenter makes each access unit of one feed into a fragment once.
// Decode time is the time the unit reached camfeed, from the first unit
// it fragmented, so it does not depend on which viewer asked first or in
// what order (a joining viewer asks for cached units after live ones). The
// sample duration is the recent average frame interval, as muxer's.
type fragmenter struct {
	mu       sync.Mutex
	m        *muxer // marshals; its own timeline is not used
	start    time.Time
	prevRecv time.Time
	slots    [fragmentSlots]*fragment
	refs     int
}

func newFragmenter(fps float64) *fragmenter { return &fragmenter{m: newMuxer(fps)} }

// get returns f's fragment, making it if no viewer has yet.
func (fr *fragmenter) get(f hub.Frame) (*fragment, error) {
	slot := &fr.slots[f.Seq%fragmentSlots]
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if x := *slot; x != nil && x.au == f.AccessUnit {
		return x, nil
	}
	au := f.AccessUnit
	if fr.start.IsZero() {
		fr.start, fr.prevRecv = au.Received, au.Received
	}
	dts := uint64(0)
	if d := au.Received.Sub(fr.start); d > 0 {
		dts = uint64(d) * clockRate / uint64(time.Second)
	}
	if au.Received.After(fr.prevRecv) {
		fr.m.observe(au.Received.Sub(fr.prevRecv))
		fr.prevRecv = au.Received
	}
	b, err := fr.m.marshal(au, dts, 1)
	if err != nil {
		return nil, err
	}
	x := &fragment{au: au, b: bytes.Clone(b), dts: dts}
	if err := x.locate(); err != nil {
		return nil, err
	}
	*slot = x
	return x, nil
}

// timeline is one viewer's clock over its feed's fragments: its own
// sequence numbers from 1 and decode times from 0 at its first fragment,
// always increasing.
type timeline struct {
	seq     uint32
	base    uint64
	lastDTS uint64
	hdr     []byte
}

// header returns the viewer's moof for x.
func (t *timeline) header(x *fragment) []byte {
	if t.seq == 0 {
		t.base = x.dts
	}
	dts := uint64(0)
	if x.dts > t.base {
		dts = x.dts - t.base
	}
	if t.seq > 0 && dts <= t.lastDTS {
		dts = t.lastDTS + 1
	}
	t.lastDTS = dts
	t.seq++
	t.hdr = x.header(t.hdr, t.seq, dts)
	return t.hdr
}
