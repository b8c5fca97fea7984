package testsrc

import "time"

// Luma levels of the pattern. Everything stays within video range
// (16..235), so no PCM sample is ever 0 and the background is exactly the
// value a DC-predicted macroblock with no neighbours decodes to.
const (
	gray  = 128
	black = 16
	white = 235
)

// font3x5 holds the glyphs of the clock and the frame counter, one row of
// 3 bits per byte (bit 2 is the left column), top row first.
var font3x5 = [...][5]byte{
	'0' - '0': {7, 5, 5, 5, 7},
	'1' - '0': {2, 6, 2, 2, 7},
	'2' - '0': {7, 1, 7, 4, 7},
	'3' - '0': {7, 1, 7, 1, 7},
	'4' - '0': {5, 5, 7, 1, 1},
	'5' - '0': {7, 4, 7, 1, 7},
	'6' - '0': {7, 4, 7, 5, 7},
	'7' - '0': {7, 1, 1, 1, 1},
	'8' - '0': {7, 5, 7, 5, 7},
	'9' - '0': {7, 5, 7, 1, 7},
	10:        {0, 2, 0, 2, 0}, // ':'
	11:        {0, 0, 0, 0, 2}, // '.'
}

func glyph(c byte) *[5]byte {
	switch {
	case c >= '0' && c <= '9':
		return &font3x5[c-'0']
	case c == ':':
		return &font3x5[10]
	default:
		return &font3x5[11]
	}
}

// rect is a box in luma pixels; empty when w or h is 0.
type rect struct{ x, y, w, h int }

// textBox is one line of text: white glyphs on a black box of n
// characters. The box leaves its last pixel row and column gray, so the
// macroblocks right of and below it stay cheap to code (see flatMB).
type textBox struct {
	rect     // the box; w == 0 when the line does not fit
	n    int // characters
}

// layout places the parts of the pattern for one picture size. Everything
// but the time code is optional and is dropped when it does not fit.
type layout struct {
	width, height int // displayed size
	sx, sy        int // font pixel size: a glyph is 3sx x 5sy, a character 4sx wide
	tc            rect
	clock         textBox // HH:MM:SS.mmm
	counter       textBox // frame number, 8 digits
	bars          rect    // static gray wedge
	box           rect    // where the square bounces
	square        int     // side of the square; 0 when there is none
	vx, vy        int     // speed of the square in pixels per second
}

const (
	clockChars   = len("15:04:05.000")
	counterChars = 8
)

func newLayout(width, height int) layout {
	l := layout{width: width, height: height}
	// Characters are 4sx wide, so from 480 wide up every digit sits in
	// its own macroblock(s) and only the digits that change are re-sent.
	switch {
	case width >= 1280:
		l.sx, l.sy = 8, 6
	case width >= 480:
		l.sx, l.sy = 4, 3
	case width >= 128:
		l.sx, l.sy = 2, 2
	default:
		l.sx, l.sy = 1, 1
	}
	l.tc = rect{0, 0, min(width, tcCells*tcCell), tcRows(width) * tcCell}
	lineH := align16(5*l.sy + 1)
	gap := 0
	if l.sx >= 4 {
		gap = 16
	}
	y := align16(l.tc.h) + gap
	barTop := height
	if height-y >= 2*(lineH+gap)+48 {
		barTop = (height - 16) &^ 15
		l.bars = rect{0, barTop, width, height - barTop}
	}
	x := 4 * l.sx
	line := func(n int) textBox {
		w := n * 4 * l.sx
		if y+lineH > barTop || x+w > width {
			return textBox{}
		}
		b := textBox{rect{x, y, w - 1, lineH - 1}, n}
		y += lineH + gap
		return b
	}
	l.clock = line(clockChars)
	l.counter = line(counterChars)
	l.square = max(8, 4*l.sx)
	l.box = rect{0, y, width, barTop - gap - y}
	if l.box.h < l.square+4 {
		l.square, l.box = 0, rect{}
	}
	l.vx, l.vy = 32*l.sx, 24*l.sx
	return l
}

func align16(v int) int { return (v + 15) &^ 15 }

// fillRect sets a w x h box at (x, y) of a plane with the given stride.
func fillRect(p []byte, stride, x, y, w, h int, v byte) {
	for r := y; r < y+h; r++ {
		row := p[r*stride+x : r*stride+x+w]
		for i := range row {
			row[i] = v
		}
	}
}

// drawBase draws the parts of the pattern that never change: the
// background, the gray wedge and the black boxes behind the text.
func (l *layout) drawBase(p []byte, stride int) {
	for i := range p {
		p[i] = gray
	}
	if l.bars.h > 0 {
		const n = 8
		for i := 0; i < n; i++ {
			x0, x1 := i*l.width/n, (i+1)*l.width/n
			fillRect(p, stride, x0, l.bars.y, x1-x0, l.bars.h, byte(black+i*(white-black)/(n-1)))
		}
	}
	for _, b := range [...]textBox{l.clock, l.counter} {
		if b.w > 0 {
			fillRect(p, stride, b.x, b.y, b.w, b.h, black)
		}
	}
}

// drawFrame draws the moving parts of frame n, captured at t, over a copy
// of the base: time code, clock, frame counter and square.
func (l *layout) drawFrame(p []byte, stride int, n int64, t time.Time, fps int) {
	drawTimeCode(p, stride, t.UnixMilli())
	var buf [max(clockChars, counterChars)]byte
	if l.clock.w > 0 {
		hh, mm, ss := t.Clock()
		ms := t.Nanosecond() / 1e6
		s := buf[:clockChars]
		put2 := func(i, v int) { s[i], s[i+1] = byte('0'+v/10), byte('0'+v%10) }
		put2(0, hh)
		s[2] = ':'
		put2(3, mm)
		s[5] = ':'
		put2(6, ss)
		s[8] = '.'
		s[9], s[10], s[11] = byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)
		l.drawText(p, stride, l.clock, s)
	}
	if l.counter.w > 0 {
		s := buf[:counterChars]
		v := n
		for i := len(s) - 1; i >= 0; i-- {
			s[i] = byte('0' + v%10)
			v /= 10
		}
		l.drawText(p, stride, l.counter, s)
	}
	if l.square > 0 {
		// Position from the frame number, not the clock, so frame n
		// always looks the same: tests can redraw it.
		x := bounce(n*int64(l.vx)/int64(fps), l.box.w-l.square)
		y := bounce(n*int64(l.vy)/int64(fps), l.box.h-l.square)
		fillRect(p, stride, l.box.x+x, l.box.y+y, l.square, l.square, white)
	}
}

// drawText draws s (at most b.n characters) inside b, glyphs centred in
// their 4sx-wide character cells.
func (l *layout) drawText(p []byte, stride int, b textBox, s []byte) {
	top := b.y + (b.h+1-5*l.sy)/2
	for i, c := range s {
		left := b.x + i*4*l.sx + l.sx/2
		g := glyph(c)
		for row, bits := range g {
			for col := 0; col < 3; col++ {
				if bits&(4>>col) != 0 {
					fillRect(p, stride, left+col*l.sx, top+row*l.sy, l.sx, l.sy, white)
				}
			}
		}
	}
}

// bounce maps a distance travelled to a position in 0..span that goes back
// and forth like a ball between two walls.
func bounce(d int64, span int) int {
	if span <= 0 {
		return 0
	}
	p := int(d % int64(2*span))
	if p > span {
		p = 2*span - p
	}
	return p
}
