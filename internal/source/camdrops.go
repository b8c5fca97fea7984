package source

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Frames dropped by the camera, from its sensor timestamps.
//
// rpicam-vid's --save-pts FILE writes "# timecode format v2", then one
// line per encoded frame: its timestamp in milliseconds with three
// decimals ("1234.567"), libcamera's buffer timestamp (the sensor's
// capture time), offset so that the first frame output is at 0
// (rpicam-apps output/output.cpp, Output::timestampReady). The sensor runs
// at a steady frame period, so a gap of about k periods between two
// consecutive lines means k-1 frames were captured and never reached the
// encoder's output: the Pi was short of CPU, memory bandwidth or power,
// or the mode cannot run at the frame rate asked for. rpicam-vid reports
// these drops nowhere else.

// ErrPTSLine is returned for a line of the timestamp file that is neither
// a comment nor a timestamp.
var ErrPTSLine = errors.New("not a timestamp line")

// maxPTSDigits bounds the whole milliseconds of a timestamp: 13 digits is
// over 300 years, and keeps the microseconds far from overflowing int64.
const maxPTSDigits = 13

// ParsePTSLine parses one line of a --save-pts file. A timestamp
// ("1234.567", milliseconds) is returned in microseconds with ok set; a
// comment ("# timecode format v2") or an empty line gives ok false and no
// error. Fractions finer than a microsecond are cut off.
func ParsePTSLine(line string) (us int64, ok bool, err error) {
	s := strings.TrimSpace(line)
	if s == "" || s[0] == '#' {
		return 0, false, nil
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > maxPTSDigits || !digits(whole) || dot && (frac == "" || !digits(frac)) {
		return 0, false, fmt.Errorf("%w: %q (want milliseconds such as 1234.567)", ErrPTSLine, firstChars(s))
	}
	for _, c := range whole {
		us = us*10 + int64(c-'0')
	}
	us *= 1000
	for i, m := 0, int64(100); i < len(frac) && m > 0; i, m = i+1, m/10 {
		us += int64(frac[i]-'0') * m
	}
	return us, true, nil
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func firstChars(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Limits of DropDetector.
const (
	// MaxPTSGap is the longest gap still counted as drops; a longer one
	// (or one backwards) is a pause or a restart of the stream, not frames
	// lost. It matches the feed's default stall timeout: a camera silent
	// for longer is restarted anyway.
	MaxPTSGap = 5 * time.Second
	// learnIntervals is how many recent intervals the frame period is
	// learned from (their median, which a few drops do not move), and
	// minLearned how many it needs before it judges a gap.
	learnIntervals = 31
	minLearned     = 8
)

// DropDetector counts dropped frames from consecutive sensor timestamps.
// A gap of at least 1.5 frame periods is a drop: k periods (rounded) is
// k-1 frames dropped. It is a pure value: no clock, no I/O.
type DropDetector struct {
	// Period is the configured frame period (from the framerate); zero
	// learns it from the stream. When the mode cannot reach the framerate
	// asked for, every frame then counts as a drop, which is what it is
	// to a viewer, and the log line says the frame rate may be too high.
	Period time.Duration

	prev      int64 // the previous timestamp, µs
	have      bool
	intervals [learnIntervals]int64
	n, next   int // intervals held, and where the next goes
}

// Next takes the next timestamp (µs) and returns how many frames were
// dropped just before it.
func (d *DropDetector) Next(us int64) int {
	if !d.have {
		d.prev, d.have = us, true
		return 0
	}
	gap := us - d.prev
	d.prev = us
	if gap <= 0 || gap > MaxPTSGap.Microseconds() {
		// A restart or a pause: the period learned before may not hold.
		d.n, d.next = 0, 0
		return 0
	}
	period := d.period()
	d.intervals[d.next] = gap
	d.next = (d.next + 1) % learnIntervals
	d.n = min(d.n+1, learnIntervals)
	if period <= 0 || 2*gap < 3*period {
		return 0
	}
	return int((gap+period/2)/period) - 1
}

// period is the frame period in µs, or 0 while it is still unknown.
func (d *DropDetector) period() int64 {
	if d.Period > 0 {
		return d.Period.Microseconds()
	}
	if d.n < minLearned {
		return 0
	}
	var buf [learnIntervals]int64
	s := buf[:d.n]
	copy(s, d.intervals[:d.n])
	slices.Sort(s)
	return s[len(s)/2]
}
