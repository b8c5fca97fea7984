package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/camfeed/camfeed/internal/mediatime"
)

// Segment names: START_SECONDSs.mp4 once finished, START.mp4.part while
// written. START is UTC with milliseconds, so names sort by time.
const (
	nameTime = "20060102T150405.000Z"
	partExt  = ".mp4.part"
)

var segRE = regexp.MustCompile(`^([0-9]{8}T[0-9]{6}\.[0-9]{3}Z)_([0-9]+\.[0-9]{3})s\.mp4$`)

// Segment is a finished recording file.
type Segment struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	Bytes   int64     `json:"bytes"`
}

// End is when the segment's last picture ends.
func (s Segment) End() time.Time {
	return s.Start.Add(time.Duration(s.Seconds * float64(time.Second)))
}

func (s Segment) fileName() string {
	return s.Start.UTC().Format(nameTime) + "_" + strconv.FormatFloat(s.Seconds, 'f', 3, 64) + "s.mp4"
}

// parseSegment reads a finished segment's name.
func parseSegment(name string) (Segment, bool) {
	m := segRE.FindStringSubmatch(name)
	if m == nil {
		return Segment{}, false
	}
	start, err1 := time.Parse(nameTime, m[1])
	secs, err2 := strconv.ParseFloat(m[2], 64)
	if err1 != nil || err2 != nil {
		return Segment{}, false
	}
	return Segment{Name: name, Start: start, Seconds: secs}, true
}

// errNoRoom means the segment being written alone reached MaxBytes.
var errNoRoom = errors.New("record: the segment being written reached max_bytes")

// recover repairs the part files a crash or power cut left, and loads the
// list of segments. Then it applies the bounds.
func (r *Recorder) recover() error {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return err
	}
	var segs []Segment
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(name, partExt) {
			if s, ok := r.repair(name); ok {
				segs = append(segs, s)
			}
			continue
		}
		s, ok := parseSegment(name)
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.Bytes = info.Size()
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	r.mu.Lock()
	r.segs = segs
	err = r.makeRoomLocked(0, time.Now())
	r.mu.Unlock()
	if errors.Is(err, ErrDiskFull) {
		err = nil // Run pauses at the first write and says why
	}
	syncDir(r.dir)
	return err
}

// repair cuts a part file back to its last whole fragment and renames it
// to a segment, or deletes it when it holds none.
func (r *Recorder) repair(name string) (Segment, bool) {
	path := filepath.Join(r.dir, name)
	start, err := time.Parse(nameTime, strings.TrimSuffix(name, partExt))
	if err != nil {
		r.log.Warn("record: removing a part file with a foreign name", "file", name)
		os.Remove(path)
		return Segment{}, false
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Segment{}, false
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return Segment{}, false
	}
	_, frags, whole, _ := scan(f, info.Size(), nil)
	if len(frags) == 0 {
		f.Close()
		os.Remove(path)
		r.log.Info("record: removed a segment cut short before its first fragment", "file", name)
		return Segment{}, false
	}
	last := frags[len(frags)-1]
	s := Segment{Start: start, Seconds: float64(last.base+last.dur) / mediatime.Timescale, Bytes: whole}
	s.Name = s.fileName()
	err = f.Truncate(whole)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err == nil {
		err = os.Rename(path, filepath.Join(r.dir, s.Name))
	}
	if err != nil {
		r.log.Error("record: repair", "file", name, "err", err)
		return Segment{}, false
	}
	r.log.Info("record: repaired a segment cut short", "file", s.Name, "kept", whole, "of", info.Size())
	return s, true
}

// makeRoom deletes segments past MaxAge (at now, feed time), then the
// oldest until n more bytes fit under MaxBytes, and checks free space.
func (r *Recorder) makeRoom(n int64, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.makeRoomLocked(n, now)
}

func (r *Recorder) makeRoomLocked(n int64, now time.Time) error {
	for len(r.segs) > 0 && now.Sub(r.segs[0].End()) > r.cfg.MaxAge {
		r.deleteOldestLocked("age")
	}
	for len(r.segs) > 0 && r.totalLocked()+n > r.cfg.MaxBytes {
		r.deleteOldestLocked("size")
	}
	if r.totalLocked()+n > r.cfg.MaxBytes {
		return errNoRoom
	}
	if free, err := r.free(r.dir); err == nil && free-n < r.cfg.MinFree {
		return fmt.Errorf("%w: %s free, %s kept free", ErrDiskFull, fmtBytes(max(free, 0)), fmtBytes(r.cfg.MinFree))
	}
	return nil
}

func (r *Recorder) deleteOldestLocked(why string) {
	s := r.segs[0]
	r.segs = r.segs[1:]
	if err := os.Remove(filepath.Join(r.dir, s.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Error("record: delete", "segment", s.Name, "err", err)
	}
	r.deleted++
	r.log.Debug("record: deleted", "segment", s.Name, "for", why)
}

func (r *Recorder) totalLocked() int64 {
	var n int64
	for _, s := range r.segs {
		n += s.Bytes
	}
	if r.cur != nil {
		n += r.cur.complete
	}
	return n
}

// fragInfo is one whole fragment of a segment file.
type fragInfo struct {
	off, size int64  // moof and mdat
	base, dur uint64 // ticks
	sync      bool   // starts with a keyframe
}

// maxFragmentBytes bounds what scan reads at once.
const maxFragmentBytes = 64 << 20

// scan reads a segment file up to limit: the init (ftyp and moov) and
// each whole fragment (moof then mdat, parsed by mediacommon, so a
// fragment whose sample table does not fit its data is not whole). It
// stops at the first box that is cut short, damaged or out of place, and
// returns the init's bytes, the fragments and how many bytes are whole.
// fn, when not nil, gets each fragment's bytes and parts as it is read.
func scan(f io.ReaderAt, limit int64, fn func(fragInfo, []byte, fmp4.Parts) error) (init []byte, frags []fragInfo, whole int64, err error) {
	init, err = readInit(f, limit)
	if err != nil {
		return nil, nil, 0, err
	}
	whole = int64(len(init))
	var buf []byte
	for {
		typ, moof, ok := readBox(f, whole, limit)
		if !ok || typ != "moof" {
			return init, frags, whole, nil
		}
		typ, mdat, ok := readBox(f, whole+moof, limit)
		if !ok || typ != "mdat" || moof+mdat > maxFragmentBytes {
			return init, frags, whole, nil
		}
		buf = slices.Grow(buf[:0], int(moof+mdat))[:moof+mdat]
		if _, err := f.ReadAt(buf, whole); err != nil {
			return init, frags, whole, nil
		}
		var parts fmp4.Parts
		if err := parts.Unmarshal(buf); err != nil || len(parts) != 1 || len(parts[0].Tracks) != 1 || len(parts[0].Tracks[0].Samples) == 0 {
			return init, frags, whole, nil
		}
		tr := parts[0].Tracks[0]
		fi := fragInfo{off: whole, size: moof + mdat, base: tr.BaseTime, sync: !tr.Samples[0].IsNonSyncSample}
		for _, s := range tr.Samples {
			fi.dur += uint64(s.Duration)
		}
		if fn != nil {
			if err := fn(fi, buf, parts); err != nil {
				return init, frags, whole, err
			}
		}
		frags = append(frags, fi)
		whole += moof + mdat
	}
}

// readBox reads the header of the box at off: its type and size, and
// whether it is whole before limit. Size 1 (64-bit) is never written here.
func readBox(f io.ReaderAt, off, limit int64) (string, int64, bool) {
	var hdr [8]byte
	if off+8 > limit {
		return "", 0, false
	}
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return "", 0, false
	}
	size := int64(binary.BigEndian.Uint32(hdr[:]))
	if size < 8 || off+size > limit {
		return "", 0, false
	}
	return string(hdr[4:8]), size, true
}

// readInit returns a segment's init: its ftyp and moov boxes.
func readInit(f io.ReaderAt, limit int64) ([]byte, error) {
	typ, n1, ok := readBox(f, 0, limit)
	if !ok || typ != "ftyp" {
		return nil, errors.New("record: no ftyp")
	}
	typ, n2, ok := readBox(f, n1, limit)
	if !ok || typ != "moov" || n1+n2 > maxFragmentBytes {
		return nil, errors.New("record: no moov")
	}
	init := make([]byte, n1+n2)
	if _, err := f.ReadAt(init, 0); err != nil {
		return nil, err
	}
	return init, nil
}

// fmtBytes writes a size for people: 512 KiB, 100 MiB, 1.5 GiB.
func fmtBytes(n int64) string {
	switch {
	case n >= 10<<30:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
