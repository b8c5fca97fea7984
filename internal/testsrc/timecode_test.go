package testsrc

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func plane(width, height int, v byte) []byte {
	p := make([]byte, width*height)
	for i := range p {
		p[i] = v
	}
	return p
}

func TestTimeCodeRoundTrip(t *testing.T) {
	times := []int64{0, 1, 1<<tcTimeBits - 1, 0x5555_5555_5555, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixMilli()}
	sizes := []struct{ w, h int }{{64, 56}, {64, 64}, {72, 56}, {176, 144}, {320, 8 * 2}, {440, 16}, {448, 8}, {640, 480}, {1920, 1080}}
	for _, s := range sizes {
		for _, ms := range times {
			p := plane(s.w, s.h, gray)
			drawTimeCode(p, s.w, ms)
			got, err := ReadTimeCode(p, s.w, s.h)
			if err != nil || got.UnixMilli() != ms {
				t.Errorf("%dx%d, %d ms: got %d, %v", s.w, s.h, ms, got.UnixMilli(), err)
			}
		}
	}
}

// TestTimeCodeDistortion applies what a browser does to a decoded frame
// before a page can read it: limited to full range expansion (as for an
// RGB canvas), a blur across cell edges, and noise.
func TestTimeCodeDistortion(t *testing.T) {
	const w, h = 640, 480
	ms := time.Date(2031, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		f    func(p []byte) []byte
	}{
		{"full range", func(p []byte) []byte {
			for i, v := range p {
				p[i] = byte(min(255, max(0, (int(v)-16)*255/219)))
			}
			return p
		}},
		{"box blur 3x3", func(p []byte) []byte {
			q := make([]byte, len(p))
			for y := 1; y < h-1; y++ {
				for x := 1; x < w-1; x++ {
					s := 0
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							s += int(p[(y+dy)*w+x+dx])
						}
					}
					q[y*w+x] = byte(s / 9)
				}
			}
			return q
		}},
		{"noise", func(p []byte) []byte {
			for i, v := range p {
				p[i] = byte(min(255, max(0, int(v)+rng.IntN(121)-60)))
			}
			return p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := plane(w, h, gray)
			drawTimeCode(p, w, ms)
			got, err := ReadTimeCode(c.f(p), w, h)
			if err != nil || got.UnixMilli() != ms {
				t.Errorf("got %d, %v; want %d", got.UnixMilli(), err, ms)
			}
		})
	}
}

func TestTimeCodeErrors(t *testing.T) {
	cases := []struct {
		name string
		p    []byte
		w, h int
		want string
	}{
		{"gray", plane(640, 480, gray), 640, 480, "testsrc: no time code: no start marker"},
		{"black", plane(640, 480, black), 640, 480, "testsrc: no time code: no start marker"},
		{"short plane", plane(640, 479, gray), 640, 480, "testsrc: no time code: plane of 306560 bytes is too small for 640x480"},
		{"narrow", plane(4, 100, gray), 4, 100, "testsrc: no time code: plane of 400 bytes is too small for 4x100"},
		{"negative", plane(4, 4, gray), -2, -2, "testsrc: no time code: plane of 16 bytes is too small for -2x-2"},
		{"huge", plane(64, 64, gray), 1 << 30, 1 << 30, "testsrc: no time code: plane of 4096 bytes is too small for 1073741824x1073741824"}, // 1<<30: still an int on 32-bit ARM
		{"too low for the wrap", plane(64, 48, gray), 64, 48, "testsrc: no time code: 64x48 is too small to hold one"},
		{"no end marker", func() []byte {
			p := plane(640, 480, gray)
			drawTimeCode(p, 640, 12345)
			fillRect(p, 640, (tcCells-1)*tcCell, 0, tcCell, tcCell, black)
			return p
		}(), 640, 480, "testsrc: no time code: no end marker"},
		{"read at the wrong width", func() []byte {
			p := plane(640, 480, gray)
			drawTimeCode(p, 640, 12345)
			return p
		}(), 320, 960, "testsrc: no time code: no start marker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadTimeCode(c.p, c.w, c.h)
			if err == nil || err.Error() != c.want || !errors.Is(err, ErrNoTimeCode) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

// FuzzReadTimeCode feeds arbitrary planes to the reader: it must never
// panic, and whatever it accepts must redraw to the same time.
func FuzzReadTimeCode(f *testing.F) {
	p := plane(64, 64, gray)
	drawTimeCode(p, 64, 1700000000000)
	f.Add(p, uint16(64))
	f.Add(plane(72, 64, gray), uint16(72))
	f.Add([]byte{1, 2, 3}, uint16(0))
	f.Fuzz(func(t *testing.T, p []byte, width uint16) {
		w := int(width)
		h := 0
		if w > 0 {
			h = len(p) / w
		}
		got, err := ReadTimeCode(p, w, h)
		if err != nil {
			return
		}
		q := plane(w, h, gray)
		drawTimeCode(q, w, got.UnixMilli())
		again, err := ReadTimeCode(q, w, h)
		if err != nil || !again.Equal(got) {
			t.Fatalf("read %v, redrawn and read %v, %v", got, again, err)
		}
	})
}
