package h264

import (
	"bytes"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

// pauseStream is a real stream laid out as an encoder writes it, with the
// byte offset where each access unit ends.
type pauseStream struct {
	data []byte
	ends map[int]bool
	want [][]byte // each unit's Data as the parser emits it
}

// loadPauseStream parses a test stream in one go and lays its access
// units out again back to back (without the trailing AUD the parser adds,
// which in a stream would open the next unit).
func loadPauseStream(t testing.TB, file string) pauseStream {
	raw, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(ParserConfig{})
	s := pauseStream{ends: map[int]bool{}}
	collect := func(au *AccessUnit) { s.want = append(s.want, bytes.Clone(au.Data)) }
	p.Write(raw, time.Now(), collect)
	p.Flush(time.Now(), collect)
	for _, d := range s.want {
		s.data = append(s.data, d[:len(d)-len(trailingAUD)]...)
		s.ends[len(s.data)] = true
	}
	return s
}

// splitRun feeds s in chunks of the given sizes, pausing after the chunks
// marked, and returns what was emitted, when, and what the pauses showed.
type splitResult struct {
	got        [][]byte
	atPause    []bool // got[i] was emitted by a Pause
	trustedCut bool   // a pause fell inside a unit only after PausesToTrust at unit ends
	midPause   bool   // some pause fell inside a unit
}

func splitRun(s pauseStream, chunks []int, pauses []bool) splitResult {
	var r splitResult
	p := NewParser(ParserConfig{})
	inPause := false
	emit := func(au *AccessUnit) {
		r.got = append(r.got, bytes.Clone(au.Data))
		r.atPause = append(r.atPause, inPause)
	}
	off, atEnds := 0, 0
	for i, n := range chunks {
		n = min(n, len(s.data)-off)
		p.Write(s.data[off:off+n], time.Now(), emit)
		off += n
		if pauses[i] {
			switch {
			case s.ends[off]:
				if !r.midPause {
					atEnds++
				}
			case !r.midPause:
				r.midPause = true
				r.trustedCut = atEnds >= PausesToTrust
			}
			inPause = true
			p.Pause(time.Now(), emit)
			inPause = false
		}
		if off == len(s.data) {
			break
		}
	}
	p.Write(s.data[off:], time.Now(), emit)
	p.Flush(time.Now(), emit)
	return r
}

// checkSplit checks the property: every unit emitted is one of the
// stream's, whole and in order, except that one unit may be cut, and only
// when the input first paused at PausesToTrust unit ends and then inside
// a unit; after a cut, nothing but a keyframe comes next.
func checkSplit(t *testing.T, s pauseStream, r splitResult) {
	t.Helper()
	j, cuts := 0, 0
	afterCut := false
	for i, g := range r.got {
		k := j
		for k < len(s.want) && !bytes.Equal(s.want[k], g) {
			k++
		}
		if k == len(s.want) {
			cuts++
			if !r.trustedCut || cuts > 1 {
				t.Fatalf("unit %d (%d bytes) is not one of the stream's: cut (trusted cut possible: %v, mid-unit pause: %v)", i, len(g), r.trustedCut, r.midPause)
			}
			afterCut = true
			continue
		}
		if afterCut && TypeOf(g[4:]) != NALUTypeSPS && TypeOf(g[4:]) != NALUTypeIDR {
			t.Fatalf("unit %d after a cut is not a keyframe", i)
		}
		afterCut = false
		j = k + 1
	}
}

// FuzzPauses splits real streams at arbitrary points and pauses after
// arbitrary chunks, and checks checkSplit's property. With every pause at
// a unit's end (an encoder writing each frame in one write, whatever the
// reads look like), every unit is also emitted, none is cut, and after
// the first PausesToTrust ones each is emitted at its own pause.
func FuzzPauses(f *testing.F) {
	f.Add(uint64(1), uint16(100), uint8(30), false)
	f.Add(uint64(2), uint16(4000), uint8(200), true)
	f.Add(uint64(3), uint16(7), uint8(255), false)
	f.Add(uint64(4), uint16(60000), uint8(128), true)
	streams := []pauseStream{loadPauseStream(f, "high.h264"), loadPauseStream(f, "slices_aud.h264")}
	f.Fuzz(func(t *testing.T, seed uint64, maxChunk uint16, pauseRate uint8, onlyAtEnds bool) {
		rng := rand.New(rand.NewPCG(seed, seed>>1))
		s := streams[seed%uint64(len(streams))]
		var chunks []int
		var pauses []bool
		for off := 0; off < len(s.data); {
			var n int
			if onlyAtEnds && rng.IntN(3) == 0 {
				// a frame read in one go, as from a pipe
				n = 1
				for !s.ends[off+n] {
					n++
				}
			} else {
				n = 1 + rng.IntN(int(maxChunk)+1)
			}
			n = min(n, len(s.data)-off)
			off += n
			chunks = append(chunks, n)
			pause := rng.IntN(256) < int(pauseRate)
			if onlyAtEnds {
				pause = pause && s.ends[off]
			}
			pauses = append(pauses, pause)
		}
		r := splitRun(s, chunks, pauses)
		checkSplit(t, s, r)
		if onlyAtEnds && len(r.got) != len(s.want) {
			t.Fatalf("pauses only at unit ends: %d units emitted, want all %d", len(r.got), len(s.want))
		}
	})
}

// TestPauseOneWritePerFrame: an encoder writing each frame in one write,
// with a pause after each, has every unit out by its own pause once
// PausesToTrust pauses fell at unit ends; the same stream written in two
// pieces with a pause between them never has a unit ended at a pause.
func TestPauseOneWritePerFrame(t *testing.T) {
	s := loadPauseStream(t, "high.h264")
	p := NewParser(ParserConfig{})
	var got [][]byte
	emit := func(au *AccessUnit) { got = append(got, bytes.Clone(au.Data)) }
	prev, k := 0, 0
	for off := 1; off <= len(s.data); off++ {
		if !s.ends[off] {
			continue
		}
		p.Write(s.data[prev:off], time.Now(), emit)
		p.Pause(time.Now(), emit)
		if k >= PausesToTrust && len(got) != k+1 {
			t.Errorf("after the pause ending unit %d: %d units out, want %d", k, len(got), k+1)
		}
		prev = off
		k++
	}
	for i := range got {
		if !bytes.Equal(got[i], s.want[i]) {
			t.Fatalf("unit %d differs", i)
		}
	}

	// Each frame in two writes with a pause between: never trusted.
	var chunks []int
	var pauses []bool
	prev = 0
	for off := 1; off <= len(s.data); off++ {
		if s.ends[off] {
			half := (off - prev) / 2
			chunks = append(chunks, half, off-prev-half)
			pauses = append(pauses, true, true)
			prev = off
		}
	}
	r := splitRun(s, chunks, pauses)
	checkSplit(t, s, r)
	for i, at := range r.atPause {
		if at {
			t.Fatalf("unit %d ended at a pause, though the input pauses inside frames", i)
		}
	}
	if len(r.got) != len(s.want) {
		t.Fatalf("%d units, want %d", len(r.got), len(s.want))
	}
}

// TestNewInput: an input that earned the parser's trust in its pauses
// ended in the middle of a unit; the next one pauses inside its first
// keyframe. The keyframe is not cut, and the old input's unfinished unit
// is neither emitted nor glued to the new input's first NAL unit.
func TestNewInput(t *testing.T) {
	s := loadPauseStream(t, "high.h264")
	var ends []int
	for off := range s.ends {
		ends = append(ends, off)
	}
	slices.Sort(ends)
	if len(ends) < PausesToTrust+4 {
		t.Fatalf("the stream has %d units", len(ends))
	}
	p := NewParser(ParserConfig{})
	var got []*AccessUnit
	emit := func(au *AccessUnit) { got = append(got, au) }
	now := time.Now()
	off := 0
	for _, end := range ends[:PausesToTrust+2] {
		p.Write(s.data[off:end], now, emit)
		p.Pause(now, emit)
		off = end
	}
	old := len(got)
	p.Write(s.data[off:(off+ends[PausesToTrust+2])/2], now, emit) // stops mid-unit
	p.NewInput()
	off = 0
	for _, end := range ends[:4] {
		for _, cut := range []int{off + (end-off)/3, off + 2*(end-off)/3, end} {
			p.Write(s.data[off:cut], now, emit)
			p.Pause(now, emit)
			off = cut
		}
	}
	got = got[old:]
	// A unit ends when the next one's first NAL unit is whole: of the
	// four, at least the first two are out.
	if len(got) < 2 || !got[0].Keyframe {
		t.Fatalf("the new input gave %d units (want 2 or 3), the first a keyframe: %v", len(got), len(got) > 0 && got[0].Keyframe)
	}
	for i, au := range got {
		if !bytes.Equal(au.Data, s.want[i]) {
			t.Errorf("unit %d: %d bytes, want %d", i, len(au.Data), len(s.want[i]))
		}
	}
	if st := p.Stats(); st.GarbageBytes != 0 || st.Dropped != 0 || st.Fragments != 0 {
		t.Errorf("damage: %+v", st)
	}
}
