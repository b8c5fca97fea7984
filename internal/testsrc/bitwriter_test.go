package testsrc

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/h264"
)

// bitReader reads an RBSP back in tests, most significant bit first.
type bitReader struct {
	buf []byte
	pos int
	err error
}

func (r *bitReader) u(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos >= len(r.buf)*8 {
			r.err = fmt.Errorf("read past the end at bit %d", r.pos)
			return 0
		}
		v = v<<1 | uint32(r.buf[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.u(1) == 1 }

func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.u(1) == 0 && r.err == nil {
		zeros++
		if zeros > 31 {
			r.err = fmt.Errorf("ue longer than 32 bits at bit %d", r.pos)
			return 0
		}
	}
	return 1<<zeros - 1 + r.u(zeros)
}

func (r *bitReader) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}

// bitString renders b as 0s and 1s, for readable failures.
func bitString(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%08b", c)
	}
	return s.String()
}

func TestBitWriterCodes(t *testing.T) {
	// Expected codes from Table 9-2 (ue) and Table 9-3 (se), followed by
	// the stop bit and zero padding that trailing() adds.
	cases := []struct {
		name  string
		write func(w *bitWriter)
		want  string
	}{
		{"ue 0", func(w *bitWriter) { w.ue(0) }, "1"},
		{"ue 1", func(w *bitWriter) { w.ue(1) }, "010"},
		{"ue 2", func(w *bitWriter) { w.ue(2) }, "011"},
		{"ue 3", func(w *bitWriter) { w.ue(3) }, "00100"},
		{"ue 6", func(w *bitWriter) { w.ue(6) }, "00111"},
		{"ue 7", func(w *bitWriter) { w.ue(7) }, "0001000"},
		{"ue 25", func(w *bitWriter) { w.ue(25) }, "000011010"},
		{"ue 30", func(w *bitWriter) { w.ue(30) }, "000011111"},
		{"ue 65535", func(w *bitWriter) { w.ue(65535) }, strings.Repeat("0", 16) + "1" + strings.Repeat("0", 16)},
		{"se 0", func(w *bitWriter) { w.se(0) }, "1"},
		{"se 1", func(w *bitWriter) { w.se(1) }, "010"},
		{"se -1", func(w *bitWriter) { w.se(-1) }, "011"},
		{"se 2", func(w *bitWriter) { w.se(2) }, "00100"},
		{"se -2", func(w *bitWriter) { w.se(-2) }, "00101"},
		{"u 3 bits", func(w *bitWriter) { w.u(3, 5) }, "101"},
		{"u masks high bits", func(w *bitWriter) { w.u(2, 0xff) }, "11"},
		{"u 32 bits", func(w *bitWriter) { w.u(32, 0x80010001) }, "10000000000000010000000000000001"},
		{"flags", func(w *bitWriter) { w.flag(true); w.flag(false); w.flag(true) }, "101"},
		{"align", func(w *bitWriter) { w.u(3, 7); w.alignZero(); w.u(1, 1) }, "11100000" + "1"},
		{"align when aligned", func(w *bitWriter) { w.u(8, 0xaa); w.alignZero() }, "10101010"},
		{"bytes", func(w *bitWriter) { w.bytes([]byte{0x12, 0x34}) }, "0001001000110100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w bitWriter
			w.reset(nil)
			c.write(&w)
			got := bitString(w.trailing())
			want := c.want + "1"
			want += strings.Repeat("0", (8-len(want)%8)%8)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestBitWriterEmulationPrevention(t *testing.T) {
	// 7.4.1: within a NAL unit, 00 00 followed by 00, 01, 02 or 03 gets a
	// 0x03 in between. The writer must do it whether the bytes come from
	// bits, from bytes(), or straddle both.
	cases := []struct {
		name  string
		write func(w *bitWriter)
		want  []byte
	}{
		{"bits", func(w *bitWriter) { w.u(24, 0x000001) }, []byte{0, 0, 3, 1, 0x80}},
		{"0x03 itself", func(w *bitWriter) { w.u(24, 0x000003) }, []byte{0, 0, 3, 3, 0x80}},
		{"0x04 is safe", func(w *bitWriter) { w.u(24, 0x000004) }, []byte{0, 0, 4, 0x80}},
		{"bytes", func(w *bitWriter) { w.bytes([]byte{5, 0, 0, 2, 0, 0, 0, 0}) }, []byte{5, 0, 0, 3, 2, 0, 0, 3, 0, 0, 0x80}},
		{"straddle", func(w *bitWriter) { w.u(16, 0); w.bytes([]byte{1, 2}) }, []byte{0, 0, 3, 1, 2, 0x80}},
		{"zeros reset by non-zero", func(w *bitWriter) { w.bytes([]byte{0, 7, 0, 1}) }, []byte{0, 7, 0, 1, 0x80}},
		{"trailing byte", func(w *bitWriter) { w.u(16, 0) }, []byte{0, 0, 0x80}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w bitWriter
			w.reset(nil)
			c.write(&w)
			if got := w.trailing(); !bytes.Equal(got, c.want) {
				t.Errorf("got % x, want % x", got, c.want)
			}
		})
	}
}

func TestBitWriterRoundTrip(t *testing.T) {
	// Write a long mixed sequence that produces many zero bytes, then
	// read it back through h264.RemoveEmulationPrevention.
	var w bitWriter
	w.reset([]byte{0x61})
	var want []int64
	for i := 0; i < 3000; i++ {
		switch i % 4 {
		case 0:
			v := uint32(i * 7919 % 70000)
			w.ue(v)
			want = append(want, int64(v))
		case 1:
			v := int32(i%301) - 150
			w.se(v)
			want = append(want, int64(v))
		case 2:
			w.u(16, 0) // zero bytes, to provoke emulation prevention
			want = append(want, 0)
		case 3:
			w.u(uint(i%32+1), uint32(i))
			want = append(want, int64(uint32(i)&(1<<(i%32+1)-1)))
		}
	}
	nal := w.trailing()
	if bytes.Contains(nal, []byte{0, 0, 0}) || bytes.Contains(nal, []byte{0, 0, 1}) || bytes.Contains(nal, []byte{0, 0, 2}) {
		t.Fatal("NAL unit contains a start code prefix or 00 00 00")
	}
	r := bitReader{buf: h264.RemoveEmulationPrevention(nil, nal[1:])}
	for i, v := range want {
		var got int64
		switch i % 4 {
		case 0:
			got = int64(r.ue())
		case 1:
			got = int64(r.se())
		case 2:
			got = int64(r.u(16))
		case 3:
			got = int64(r.u(i%32 + 1))
		}
		if r.err != nil || got != v {
			t.Fatalf("element %d: got %d, want %d (err %v)", i, got, v, r.err)
		}
	}
	if r.u(1) != 1 {
		t.Fatal("no stop bit")
	}
}
