package h264

import (
	"bytes"
	"time"
)

// Default limits. A 1080p IDR from the Pi's encoder at a high bitrate is
// under 1 MiB; anything far beyond that is a broken or hostile stream.
const (
	DefaultMaxNALSize = 4 << 20
	DefaultMaxAUSize  = 8 << 20
)

// ParserConfig sets the parser's limits and options.
type ParserConfig struct {
	MaxNALSize int // a larger NAL unit is dropped, and the stream resyncs at the next keyframe
	MaxAUSize  int // a larger access unit is dropped likewise
	// StampIngest adds a camfeed time SEI (TimeIngest) with the receive
	// time to every access unit, so browsers can show server→screen latency.
	StampIngest bool
}

// Stats counts what the parser has seen. All counters only grow.
type Stats struct {
	Bytes        uint64 // bytes written
	NALUs        uint64 // NAL units parsed
	AccessUnits  uint64 // access units emitted
	Keyframes    uint64 // keyframes emitted
	GarbageBytes uint64 // bytes outside any NAL unit (dropped)
	BadNALUs     uint64 // NAL units dropped: forbidden bit, reserved type, unparsable slice
	Oversized    uint64 // NAL units or access units dropped for size
	Dropped      uint64 // access units dropped while waiting for a decodable keyframe
	Fragments    uint64 // pictures or NAL units that went on after Flush ended them
}

// Parser turns an Annex-B H.264 byte stream into access units (7.4.1.2.3).
// It is a pure state machine: no I/O, no goroutines, no clock. A Parser is
// not safe for concurrent use.
//
// Invariants of what it emits: every access unit has at least one slice;
// the first one is a keyframe; every keyframe carries SPS and PPS (cached
// ones are put in front when the stream has none, as without --inline);
// after a NAL unit is lost (oversize, garbage) nothing more is emitted until
// the next keyframe, so no viewer is ever sent a picture that refers to a
// missing one.
type Parser struct {
	cfg   ParserConfig
	split splitter
	stats Stats

	cur       [][]byte // NAL units of the access unit being assembled (copies in pool)
	curBytes  int
	hasVCL    bool
	idr       bool
	captured  time.Time
	broken    bool   // a NAL unit of the current AU was lost
	needKey   bool   // drop until a keyframe: at start and after a loss
	flushed   bool   // the last AU was ended by Flush, not by the next AU's start
	paused    bool   // Flush was called since the last Write: the input paused there
	atEnds    int    // pauses so far that fell at the end of an access unit
	noEarly   bool   // a pause fell inside an access unit: Pause never ends one again
	pauseAt   uint64 // Stats.Bytes at the last pause
	pool      []byte
	slab      []byte       // free tail of the current data slab
	units     []AccessUnit // free tail of the current AccessUnit slab
	emitFn    func(*AccessUnit)
	now       time.Time
	sps, pps  []byte
	spsInfo   Info
	paramsGen uint64

	onNAL      func([]byte)
	onOversize func()
}

// NewParser returns a parser with cfg's limits (zero means the default).
func NewParser(cfg ParserConfig) *Parser {
	if cfg.MaxNALSize <= 0 {
		cfg.MaxNALSize = DefaultMaxNALSize
	}
	if cfg.MaxAUSize <= 0 {
		cfg.MaxAUSize = DefaultMaxAUSize
	}
	p := &Parser{cfg: cfg, needKey: true}
	p.split.maxNAL = cfg.MaxNALSize
	p.onNAL = p.nal
	p.onOversize = p.lost
	return p
}

// Write parses b, received at now, and calls emit for every access unit it
// completes. An access unit is complete when the next one starts; call
// Flush when the input goes idle to emit the last one without waiting.
func (p *Parser) Write(b []byte, now time.Time, emit func(*AccessUnit)) {
	p.stats.Bytes += uint64(len(b))
	p.emitFn, p.now = emit, now
	if p.paused && len(b) > 0 {
		p.afterPause(b)
	}
	garbage := p.split.garbage
	p.split.write(b, p.onNAL, p.onOversize)
	if p.flushed && p.split.garbage > garbage {
		// Flush took the end of a chunk for the end of a NAL unit, but
		// the NAL unit went on: what came before the next start code is
		// lost, and what Flush emitted was cut.
		p.cutByFlush()
	}
	p.stats.GarbageBytes = p.split.garbage
	p.emitFn = nil
}

// PausesToTrust is how many pauses must have fallen at the end of an
// access unit, and none inside one, before Flush ends an access unit at a
// pause.
const PausesToTrust = 8

// Pause tells the parser that the input paused after the bytes written
// so far. Once the input has shown that it pauses only between access
// units (PausesToTrust pauses, each followed by the start of a new access
// unit), Pause ends the pending access unit at once rather than when the
// next one starts: one frame interval less latency with encoders that
// write each frame in one go (rpicam-vid does).
//
// A pause inside an access unit is seen when the bytes after it go on
// with the same unit. Before trust, that turns early ends off for good,
// and nothing was cut. After trust, the unit was already emitted cut: the
// rest is dropped up to the next keyframe, counted in Stats.Fragments,
// and early ends are off for good too. So an input can cut at most one
// access unit, and only one that first paused at PausesToTrust frame ends
// in a row and then inside a frame; an encoder that writes frames in
// several writes with pauses between them never gets that far.
func (p *Parser) Pause(now time.Time, emit func(*AccessUnit)) {
	if p.stats.Bytes == p.pauseAt {
		return // no data since the last pause: the same pause
	}
	p.pauseAt = p.stats.Bytes
	p.paused = true
	if p.noEarly || p.atEnds < PausesToTrust {
		return
	}
	p.Flush(now, emit)
}

// Flush ends the pending NAL unit and access unit, as if the next access
// unit had begun: for the end of the input, or a caller that knows the
// unit is whole. Sources that only see a pause call Pause.
func (p *Parser) Flush(now time.Time, emit func(*AccessUnit)) {
	p.emitFn, p.now = emit, now
	p.split.flush(p.onNAL, p.onOversize)
	p.endAU()
	p.flushed = true
	p.paused = false
	p.emitFn = nil
}

// afterPause looks at the first bytes after a pause: did the pause fall
// at the end of an access unit? Called before b is parsed.
func (p *Parser) afterPause(b []byte) {
	p.paused = false
	opens, known := opensAU(b)
	picture := p.hasVCL || (p.split.inNAL && len(p.split.nal) > 0 && TypeOf(p.split.nal).IsVCL())
	switch {
	case !known:
		// too few bytes to tell: no evidence either way
	case opens && picture && p.split.inNAL && p.split.zeros == 0:
		p.atEnds++
	default:
		p.noEarly = true
	}
}

// NewInput tells the parser that the bytes written so far end one input
// and the next ones begin another: a publisher left and the next one
// connected. What is pending is discarded, not emitted: the old input may
// have stopped inside a picture (a publisher killed mid-write closes its
// socket as cleanly as one that finished), and the new input's first NAL
// unit must not be glued to it. The next unit emitted is a keyframe, since
// the new input's pictures cannot refer to the old one's, and how the new
// input pauses is learnt again from nothing (see Pause): trust earned by
// an encoder that wrote whole frames must not cut the next publisher's
// first keyframe, which arrives in pieces.
func (p *Parser) NewInput() {
	p.split.nal = p.split.nal[:0]
	p.split.inNAL, p.split.oversized, p.split.zeros = false, false, 0
	p.reset()
	p.needKey = true
	p.flushed, p.paused, p.noEarly = false, false, false
	p.atEnds = 0
	p.pauseAt = p.stats.Bytes
}

// cutByFlush handles an access unit that Flush ended too early: the rest
// of it is dropped up to the next keyframe, and Pause ends no unit early
// again.
func (p *Parser) cutByFlush() {
	p.flushed = false
	p.needKey = true
	p.noEarly = true
	p.stats.Fragments++
}

// opensAU reports whether b starts with a start code and a NAL unit that
// can only begin an access unit (7.4.1.2.3): an AUD, SPS, PPS, SEI, a
// reserved type 14-18, or the first slice of a picture (first_mb_in_slice
// 0: a ue(v) whose first bit is 1). known is false when b is too short to
// tell.
func opensAU(b []byte) (opens, known bool) {
	z := 0
	for z < len(b) && b[z] == 0 {
		z++
	}
	if z == len(b) || z+2 >= len(b) && b[z] == 1 {
		return false, false
	}
	if z < 2 || b[z] != 1 {
		return false, true
	}
	return opensAU1(TypeOf(b[z+1:]), b[z+1:]), true
}

// opensAU1 reports whether NAL unit n (at least two bytes, or one that is
// not a slice) of type t can only begin an access unit.
func opensAU1(t NALUType, n []byte) bool {
	switch {
	case t == NALUTypeAUD, t == NALUTypeSPS, t == NALUTypePPS, t == NALUTypeSEI, t >= 14 && t <= 18:
		return true
	case t == NALUTypeIDR || t == NALUTypeNonIDR:
		return len(n) > 1 && n[1]&0x80 != 0
	}
	return false
}

// WriteAU takes one complete access unit from a source that frames its
// output (the test pattern, RTP): no start codes, and no wait for the next
// access unit to begin.
func (p *Parser) WriteAU(nalus [][]byte, now time.Time, emit func(*AccessUnit)) {
	p.emitFn, p.now = emit, now
	for _, n := range nalus {
		p.stats.Bytes += uint64(len(n)) + 4
		if len(n) > p.cfg.MaxNALSize {
			p.split.oversizes++
			p.lost()
			continue
		}
		p.nal(n)
	}
	p.endAU()
	p.emitFn = nil
}

// Stats returns the counters.
func (p *Parser) Stats() Stats {
	s := p.stats
	s.Oversized += p.split.oversizes
	return s
}

// Params returns the latest SPS and PPS (nil before the first), their
// decoded summary, and a generation number that changes when either does.
func (p *Parser) Params() (sps, pps []byte, info Info, gen uint64) {
	return p.sps, p.pps, p.spsInfo, p.paramsGen
}

// lost handles a NAL unit that was dropped (oversized or malformed). What
// it belonged to is unknown, so the unit so far is ended and nothing more
// goes out until the next keyframe: a viewer may miss pictures, but never
// gets one that refers to a picture it did not get.
func (p *Parser) lost() {
	p.endAU()
	p.needKey = true
}

// nal handles one complete NAL unit; b is only valid during the call.
func (p *Parser) nal(b []byte) {
	p.stats.NALUs++
	if len(b) == 0 || b[0]&0x80 != 0 {
		p.stats.BadNALUs++
		p.lost()
		return
	}
	t := TypeOf(b)
	if p.flushed {
		// The first NAL unit after a Flush must begin an access unit;
		// anything else (the picture's next slice) means Flush cut it.
		p.flushed = false
		if !opensAU1(t, b) {
			p.cutByFlush()
		}
	}
	switch {
	case t == NALUTypeAUD:
		p.endAU()
		return // outputs need no AUD; the access unit is framed already
	case t == NALUTypeSPS || t == NALUTypePPS || t == NALUTypeSEI || (t >= 14 && t <= 18):
		if p.hasVCL {
			p.endAU()
		}
		if t == NALUTypeSPS {
			p.setSPS(b)
		} else if t == NALUTypePPS {
			p.setPPS(b)
		} else if t == NALUTypeSEI {
			kind, ts, err := ParseTimeSEI(b)
			switch {
			case err != nil:
			case kind == TimeCapture:
				p.captured = ts
			case kind == TimeIngest && p.cfg.StampIngest:
				return // an upstream camfeed's stamp: ours replaces it
			}
		}
	case t == NALUTypeIDR || t == NALUTypeNonIDR:
		firstMB, ok := firstMBInSlice(b)
		if !ok {
			p.stats.BadNALUs++
			p.lost()
			return
		}
		if p.hasVCL && firstMB == 0 {
			p.endAU()
		}
		if !p.hasVCL && firstMB != 0 && len(p.cur) == 0 {
			p.stats.Fragments++
		}
		if p.hasVCL && p.idr != (t == NALUTypeIDR) {
			// IDR and non-IDR slices in one picture (7.4.1.2.4 forbids it)
			p.stats.BadNALUs++
			p.broken = true
			p.lost()
			return
		}
		if !p.hasVCL {
			p.idr = t == NALUTypeIDR
		}
		p.hasVCL = true
	case t == NALUTypeEndSeq || t == NALUTypeEndStream:
		// kept with the access unit it ends
	case t >= 2 && t <= 4: // data partitioning is not in any profile we serve
		p.stats.BadNALUs++
		p.lost()
		return
	default: // filler, reserved, unspecified: no use to any viewer
		if t != NALUTypeFiller {
			p.stats.BadNALUs++
		}
		return
	}
	if p.curBytes+len(b)+4 > p.cfg.MaxAUSize {
		p.split.oversizes++
		p.broken = true
		return
	}
	start := len(p.pool)
	p.pool = append(p.pool, b...)
	p.cur = append(p.cur, p.pool[start:len(p.pool):len(p.pool)])
	p.curBytes += len(b) + 4
}

func (p *Parser) setSPS(b []byte) {
	if bytes.Equal(b, p.sps) {
		return
	}
	info, err := ParseSPS(b)
	if err != nil {
		p.stats.BadNALUs++
		return
	}
	p.sps = append([]byte(nil), b...)
	p.spsInfo = info
	p.paramsGen++
}

func (p *Parser) setPPS(b []byte) {
	if bytes.Equal(b, p.pps) {
		return
	}
	p.pps = append([]byte(nil), b...)
	p.paramsGen++
}

// endAU emits the access unit being assembled, if it is whole and
// decodable, and starts a new one.
func (p *Parser) endAU() {
	defer p.reset()
	if !p.hasVCL {
		if p.broken {
			p.needKey = true
		}
		return
	}
	if p.broken {
		p.needKey = true
		p.stats.Dropped++
		return
	}
	if p.needKey && !p.idr {
		p.stats.Dropped++
		return
	}
	var hasSPS, hasPPS bool
	for _, n := range p.cur {
		switch TypeOf(n) {
		case NALUTypeSPS:
			hasSPS = true
		case NALUTypePPS:
			hasPPS = true
		}
	}
	if p.idr && (!hasSPS && p.sps == nil || !hasPPS && p.pps == nil) {
		p.stats.Dropped++ // a keyframe nobody can decode yet
		p.needKey = true
		return
	}
	p.needKey = false
	p.emit(hasSPS, hasPPS)
}

func (p *Parser) emit(hasSPS, hasPPS bool) {
	size := p.curBytes + len(trailingAUD)
	addSPS := p.idr && !hasSPS
	addPPS := p.idr && !hasPPS
	if addSPS {
		size += len(p.sps) + 4
	}
	if addPPS {
		size += len(p.pps) + 4
	}
	var stamp [40]byte
	var sei []byte
	if p.cfg.StampIngest {
		sei = AppendTimeSEI(stamp[:0], TimeIngest, p.now)
		size += len(sei) + 4
	}
	au := p.newAU()
	*au = AccessUnit{Keyframe: p.idr, Received: p.now, Captured: p.captured}
	au.Data = p.alloc(size)
	au.NALUs = au.nalus[:0]
	add := func(n []byte) {
		au.Data = append(au.Data, 0, 0, 0, 1)
		au.Data = append(au.Data, n...)
		au.NALUs = append(au.NALUs, au.Data[len(au.Data)-len(n):len(au.Data):len(au.Data)])
	}
	if addSPS {
		add(p.sps)
	}
	if addPPS {
		add(p.pps)
	}
	stamped := sei == nil
	for _, n := range p.cur {
		if !stamped && TypeOf(n).IsVCL() {
			add(sei)
			stamped = true
		}
		add(n)
	}
	au.Data = append(au.Data, trailingAUD...)
	p.stats.AccessUnits++
	if au.Keyframe {
		p.stats.Keyframes++
	}
	if p.emitFn != nil {
		p.emitFn(au)
	}
}

// trailingAUD ends every access unit's Data with an access unit delimiter
// (7.3.2.4, primary_pic_type 7). Strictly it opens the next access unit,
// which is allowed anywhere; its use is that a raw-stream player (ffplay,
// VLC, a browser's demuxer) knows the picture is complete the moment it
// arrives, instead of when the next picture's first bytes do: one frame
// interval less latency, and a joining viewer's first keyframe shows at
// once even when the next picture it gets is a GOP later. It is not among
// NALUs, so packetising outputs never see it.
var trailingAUD = []byte{0, 0, 0, 1, byte(NALUTypeAUD), 0xf0}

// Access units are carved from slabs, so steady-state parsing makes no
// allocation per access unit. A slab stays alive while any unit in it is
// referenced: the ring's budget plus at most one slab of each kind.
const (
	slabBytes = 256 << 10
	slabUnits = 64
)

func (p *Parser) alloc(n int) []byte {
	if n > slabBytes/4 {
		return make([]byte, 0, n)
	}
	if cap(p.slab)-len(p.slab) < n {
		p.slab = make([]byte, 0, slabBytes)
	}
	start := len(p.slab)
	p.slab = p.slab[:start+n]
	return p.slab[start : start : start+n]
}

func (p *Parser) newAU() *AccessUnit {
	if len(p.units) == 0 {
		p.units = make([]AccessUnit, slabUnits)
	}
	au := &p.units[0]
	p.units = p.units[1:]
	return au
}

func (p *Parser) reset() {
	p.cur = p.cur[:0]
	p.pool = p.pool[:0]
	p.curBytes = 0
	p.hasVCL = false
	p.idr = false
	p.broken = false
	p.captured = time.Time{}
}

// firstMBInSlice reads first_mb_in_slice, the first ue(v) of a slice header
// (7.3.3), from a slice NAL unit. Only the first few bytes are needed, so
// emulation prevention is removed from those alone.
func firstMBInSlice(nal []byte) (uint32, bool) {
	var buf [16]byte
	head := nal[1:]
	if len(head) > 12 {
		head = head[:12]
	}
	rbsp := RemoveEmulationPrevention(buf[:0], head)
	r := bitReader{buf: rbsp}
	v, ok := r.ue()
	return v, ok
}
