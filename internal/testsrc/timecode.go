package testsrc

import (
	"errors"
	"fmt"
	"time"
)

// The pixel time code (docs/TIMECODE.md) is a row of 8x8 luma cells at the
// top-left of the picture, left to right, wrapping to the next row of cells
// when the width runs out: a start marker, the capture time in
// milliseconds since the Unix epoch (48 bits, most significant first), and
// an end marker. A cell is white (235) for 1 and black (16) for 0. It
// survives any decoder that is not lossy (the stream codes it losslessly)
// and mild filtering afterwards, because a reader only looks at the middle
// of each cell.
const (
	tcCell     = 8                  // cell size in luma pixels
	tcTimeBits = 48                 // milliseconds since 1970, good until the year 10889
	tcCells    = 4 + tcTimeBits + 4 // start marker, time, end marker
	tcOne      = 235                // luma of a 1 cell (video white)
	tcZero     = 16                 // luma of a 0 cell (video black)
)

// The markers let a reader tell a time code from a picture that has none,
// and check that it has the geometry right: the start marker sits at cell
// 0, the end marker in the last cells, after any wrap.
var (
	tcStart = [4]bool{true, false, true, false}
	tcEnd   = [4]bool{false, true, false, true}
)

// ErrNoTimeCode is returned by ReadTimeCode when the picture holds no
// readable time code.
var ErrNoTimeCode = errors.New("testsrc: no time code")

// tcRows returns how many rows of cells the time code takes at width.
func tcRows(width int) int {
	cols := width / tcCell
	return (tcCells + cols - 1) / cols
}

// tcBit returns cell i of the time code for ms.
func tcBit(i int, ms int64) bool {
	switch {
	case i < len(tcStart):
		return tcStart[i]
	case i < len(tcStart)+tcTimeBits:
		return ms>>(tcTimeBits-1-(i-len(tcStart)))&1 != 0
	default:
		return tcEnd[i-len(tcStart)-tcTimeBits]
	}
}

// drawTimeCode draws the time code for ms on a luma plane with stride width.
func drawTimeCode(y []byte, width int, ms int64) {
	cols := width / tcCell
	for i := 0; i < tcCells; i++ {
		v := byte(tcZero)
		if tcBit(i, ms) {
			v = tcOne
		}
		fillRect(y, width, i%cols*tcCell, i/cols*tcCell, tcCell, tcCell, v)
	}
}

// ReadTimeCode reads the pixel time code back from a luma plane (8-bit
// gray, stride equal to width) of the size the picture was generated at.
// It averages the 2x2 pixels at the middle of each cell and takes 128 and
// above as 1, so full-range or limited-range gray both work, and so does a
// copy that went through RGB (a browser canvas). The time has millisecond
// precision. A picture without both markers gives ErrNoTimeCode.
func ReadTimeCode(y []byte, width, height int) (time.Time, error) {
	if width < tcCell || height < tcCell || height > len(y)/width {
		return time.Time{}, fmt.Errorf("%w: plane of %d bytes is too small for %dx%d", ErrNoTimeCode, len(y), width, height)
	}
	if tcRows(width)*tcCell > height {
		return time.Time{}, fmt.Errorf("%w: %dx%d is too small to hold one", ErrNoTimeCode, width, height)
	}
	cols := width / tcCell
	bit := func(i int) bool {
		x := i%cols*tcCell + tcCell/2
		o := (i/cols*tcCell+tcCell/2)*width + x
		sum := int(y[o-width-1]) + int(y[o-width]) + int(y[o-1]) + int(y[o])
		return sum >= 4*128
	}
	for i, want := range tcStart {
		if bit(i) != want {
			return time.Time{}, fmt.Errorf("%w: no start marker", ErrNoTimeCode)
		}
	}
	for i, want := range tcEnd {
		if bit(len(tcStart)+tcTimeBits+i) != want {
			return time.Time{}, fmt.Errorf("%w: no end marker", ErrNoTimeCode)
		}
	}
	var ms int64
	for i := 0; i < tcTimeBits; i++ {
		ms <<= 1
		if bit(len(tcStart) + i) {
			ms |= 1
		}
	}
	return time.UnixMilli(ms), nil
}
