package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

var ptsLineCases = []struct {
	in   string
	us   int64
	ok   bool
	fail bool
}{
	{"# timecode format v2", 0, false, false},
	{"", 0, false, false},
	{"   \r", 0, false, false},
	{"0.000", 0, true, false},
	{"1234.567", 1_234_567, true, false},
	{"33.333\r", 33_333, true, false},
	{"  66.666  ", 66_666, true, false},
	{"100", 100_000, true, false},
	{"100.5", 100_500, true, false},
	{"100.1234567", 100_123, true, false}, // below a microsecond: cut off
	{"9999999999999.999", 9_999_999_999_999_999, true, false},
	{"99999999999999.000", 0, false, true}, // 14 digits: too long
	{"-1.000", 0, false, true},
	{"1.-234", 0, false, true},
	{"1e3", 0, false, true},
	{"12.", 0, false, true},
	{".5", 0, false, true},
	{"1,5", 0, false, true},
	{"1.5.5", 0, false, true},
	{"NaN", 0, false, true},
	{"12 34", 0, false, true},
	{"\x00\xff", 0, false, true},
}

func TestParsePTSLine(t *testing.T) {
	for _, tc := range ptsLineCases {
		us, ok, err := ParsePTSLine(tc.in)
		if us != tc.us || ok != tc.ok || (err != nil) != tc.fail {
			t.Errorf("ParsePTSLine(%q) = %d, %v, %v; want %d, %v, error %v", tc.in, us, ok, err, tc.us, tc.ok, tc.fail)
		}
		if err != nil && !errors.Is(err, ErrPTSLine) {
			t.Errorf("ParsePTSLine(%q): %v is not ErrPTSLine", tc.in, err)
		}
	}
	_, _, err := ParsePTSLine("garbage")
	if want := `not a timestamp line: "garbage" (want milliseconds such as 1234.567)`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// stamps makes n timestamps (µs) a period apart, leaving out the frames
// in drop.
func stamps(n int, period time.Duration, drop ...int) []int64 {
	var out []int64
	for i := range n {
		skip := false
		for _, d := range drop {
			skip = skip || d == i
		}
		if !skip {
			out = append(out, int64(i)*period.Microseconds())
		}
	}
	return out
}

func TestDropDetector(t *testing.T) {
	const p30 = time.Second / 30
	shift := func(s []int64, by int64) []int64 {
		for i := range s {
			s[i] += by
		}
		return s
	}
	jitter := func(s []int64) []int64 { // a few hundred µs either way
		for i := range s {
			s[i] += int64(i%3-1) * 400
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		period time.Duration
		ts     []int64
		want   int
	}{
		{"steady, configured", p30, stamps(60, p30), 0},
		{"one dropped, configured", p30, stamps(60, p30, 10), 1},
		{"three in a row and one more", p30, stamps(60, p30, 10, 11, 12, 40), 4},
		{"jitter is not a drop", p30, jitter(stamps(60, p30)), 0},
		{"jitter with a drop", p30, jitter(stamps(60, p30, 30)), 1},
		{"learned", 0, stamps(60, p30, 20, 21), 2},
		{"learned 25 fps", 0, stamps(60, 40*time.Millisecond, 30, 50), 2},
		{"not judged before the period is learned", 0, stamps(60, p30, 2), 0},
		{"the first frame dropped is not seen", p30, stamps(60, p30, 0), 0},
		{"a restart (backwards) is not a drop", p30, append(stamps(30, p30), stamps(30, p30)...), 0},
		{"a pause (6 s) is not a drop", p30, append(stamps(30, p30), shift(stamps(30, p30), 7_000_000)...), 0},
		{"a pause resets the learned period", 0, append(stamps(30, p30), shift(stamps(5, p30, 2), 7_000_000)...), 0},
		{"a gap just under the bound counts", p30, append(stamps(30, p30), shift(stamps(2, p30), 966_667+4_000_000)...), 119},
		{"the same timestamp twice", p30, append(stamps(10, p30), stamps(10, p30)[9]), 0},
		{"mode slower than the framerate asked", p30, stamps(30, 70*time.Millisecond), 29},
		{"learned slower mode", 0, stamps(30, 70*time.Millisecond), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &DropDetector{Period: tc.period}
			got := 0
			for _, ts := range tc.ts {
				got += d.Next(ts)
			}
			if got != tc.want {
				t.Errorf("dropped %d, want %d", got, tc.want)
			}
		})
	}
}

// TestReadPTS: the reader counts drops, survives lines that are not
// timestamps (and says so once), and reads to the end whatever comes.
func TestReadPTS(t *testing.T) {
	var logs testsupport.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var b strings.Builder
	b.WriteString("# timecode format v2\n")
	for i, ts := range stamps(40, 40*time.Millisecond, 20, 21, 22) {
		if i == 5 {
			b.WriteString("garbage\n" + strings.Repeat("x", 10_000) + "\nmore garbage\n")
		}
		fmt.Fprintf(&b, "%d.%03d\n", ts/1000, ts%1000)
	}
	b.WriteString("1600.000") // the last line, cut off before its newline
	r := strings.NewReader(b.String())
	drops := &FrameDrops{}
	if _, ok := drops.Count(); ok {
		t.Error("a count before any timestamp")
	}
	readPTS(r, &DropDetector{Period: 40 * time.Millisecond}, drops, log)
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread", r.Len())
	}
	if n, ok := drops.Count(); n != 3 || !ok {
		t.Errorf("count %d, %v; want 3", n, ok)
	}
	if n := strings.Count(logs.String(), "cannot read"); n != 1 {
		t.Errorf("bad lines logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "camera dropped 3 frames in the last minute (sensor timestamps)") {
		t.Errorf("drops not logged:\n%s", logs.String())
	}
}

// TestFrameDropsLog: drops are logged at once after a quiet spell, then at
// most once every DropLogEvery, with what came in between.
func TestFrameDropsLog(t *testing.T) {
	var logs testsupport.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d := &FrameDrops{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []struct {
		at time.Duration
		n  int
	}{{0, 0}, {time.Second, 1}, {2 * time.Second, 4}, {30 * time.Second, 5}, {61 * time.Second, 0}, {62 * time.Second, 0}, {10 * time.Minute, 2}} {
		d.add(s.n, t0.Add(s.at), log)
	}
	lines := logs.Lines()
	want := []string{"camera dropped 1 frame in", "camera dropped 9 frames in", "camera dropped 2 frames in"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %s\nwant %q", i, lines[i], w)
		}
	}
	if n, ok := d.Count(); n != 12 || !ok {
		t.Errorf("count %d, %v", n, ok)
	}
}

func TestRPiCamWantsPTS(t *testing.T) {
	drops := &FrameDrops{}
	for _, tc := range []struct {
		name string
		cam  RPiCam
		want bool
	}{
		{"hardware encoder", RPiCam{Drops: drops}, true},
		{"no counter", RPiCam{}, false},
		{"software encoder (a Pi 5)", RPiCam{Drops: drops, Software: true}, false},
		{"libav in extra_args", RPiCam{Drops: drops, ExtraArgs: []string{"--codec", "libav"}}, false},
		{"libav in extra_args, one word", RPiCam{Drops: drops, ExtraArgs: []string{"--codec=libav"}}, false},
		{"h264 in extra_args", RPiCam{Drops: drops, ExtraArgs: []string{"--codec", "h264"}}, true},
		{"the user's own --save-pts", RPiCam{Drops: drops, ExtraArgs: []string{"--save-pts", "/tmp/pts.txt"}}, false},
		{"the user's own --save-pts=", RPiCam{Drops: drops, ExtraArgs: []string{"--save-pts=/tmp/pts.txt"}}, false},
	} {
		if got := tc.cam.wantsPTS(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	cam := RPiCam{Framerate: 30, ExtraArgs: []string{"--denoise", "cdn_off"}}
	want := "--nopreview --timeout 0 --inline --flush --codec h264 --camera 0 --framerate 30 --save-pts /dev/fd/3 --denoise cdn_off -o -"
	if got := strings.Join(cam.args(ptsFile), " "); got != want {
		t.Errorf("args:\n got %s\nwant %s", got, want)
	}
}

// TestRPiCamCountsDrops runs the rpicam source twice against the fake
// rpicam-vid, which drops 3 frames and exits after its stream: the
// timestamps come through the pipe, and drops are counted across runs; a
// tool without --save-pts is not given it, and nothing is counted. A
// process that keeps the pipe open after the camera exits does not keep
// the source running, and no goroutine is left behind. An rpicam-vid that
// lists --save-pts but refuses it (libav) fails once and then runs
// without.
func TestRPiCamCountsDrops(t *testing.T) {
	testsupport.CheckGoroutines(t, "readPTS")
	stream := filepath.Join(t.TempDir(), "au.264")
	if err := os.WriteFile(stream, []byte{0, 0, 0, 1, 0x65, 0x88, 0x84}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		env           string // a knob of the fake, set to 1
		want          uint64
		wantAvailable bool
		refused       bool // the first run fails on --save-pts
	}{
		{"with --save-pts", "", 6, true, false},
		{"a process holds the pipe", "FAKE_RPICAM_HOLD", 6, true, false},
		{"an old rpicam-vid", "FAKE_RPICAM_OLD", 0, false, false},
		{"a libav encoder that refuses it", "FAKE_RPICAM_LIBAV", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testsupport.FakeRPiCam(t, stream)
			t.Setenv("FAKE_RPICAM_EXIT", "1")
			t.Setenv("FAKE_RPICAM_DROP", "3")
			if tc.env != "" {
				t.Setenv(tc.env, "1")
			}
			drops := &FrameDrops{}
			cam := &RPiCam{Framerate: 30, Drops: drops, Log: testsupport.Logger(t), bin: filepath.Join(dir, "rpicam-vid")}
			for i := range 2 {
				sink := &recSink{}
				done := make(chan error, 1)
				go func() { done <- cam.Run(context.Background(), sink) }()
				select {
				case err := <-done:
					if !errors.Is(err, ErrEnded) && !(i == 0 && tc.refused) {
						t.Errorf("run %d: %v", i, err)
					}
				case <-time.After(testsupport.Patience):
					t.Fatal("the source did not end with the camera")
				}
				if n, _, _ := sink.snapshot(); n == 0 && !(i == 0 && tc.refused) {
					t.Errorf("run %d: no video", i)
				}
			}
			if n, ok := drops.Count(); n != tc.want || ok != tc.wantAvailable {
				t.Errorf("count %d, %v; want %d, %v", n, ok, tc.want, tc.wantAvailable)
			}
			for i, args := range testsupport.FakeRPiCamRuns(t, dir) {
				if got := strings.Contains(args, "--save-pts /dev/fd/3"); got != (tc.wantAvailable || i == 0 && tc.refused) {
					t.Errorf("run %d: args %s", i, args)
				}
			}
		})
	}
}

// FuzzPTS feeds a whole --save-pts file, line by line, to the parser and
// to two detectors (a configured period and a learned one): no panic, a
// timestamp is never negative, and no gap counts more frames than fit in
// MaxPTSGap.
func FuzzPTS(f *testing.F) {
	for _, tc := range ptsLineCases {
		f.Add(tc.in)
	}
	f.Add("# timecode format v2\n0.000\n33.333\n66.666\n133.333\n166.666\n")
	f.Add("# timecode format v2\n0.000\n4999.999\n1.000\n0.001\n")
	f.Fuzz(func(t *testing.T, text string) {
		const period = 33 * time.Millisecond
		maxDrops := int(MaxPTSGap / period)
		dets := []*DropDetector{{Period: period}, {}}
		for _, line := range strings.Split(text, "\n") {
			us, ok, err := ParsePTSLine(line)
			if err != nil && (ok || !errors.Is(err, ErrPTSLine)) {
				t.Fatalf("%q: %d, %v, %v", line, us, ok, err)
			}
			if !ok {
				continue
			}
			if us < 0 {
				t.Fatalf("%q: %d µs", line, us)
			}
			for _, d := range dets {
				if n := d.Next(us); n < 0 || d.Period > 0 && n > maxDrops {
					t.Fatalf("%q: %d dropped", line, n)
				}
			}
		}
	})
}

// BenchmarkPTS is the cost per frame of reading a timestamp: parse the
// line and judge the gap with a learned period (the median of 31
// intervals, the dearer case).
func BenchmarkPTS(b *testing.B) {
	b.ReportAllocs()
	var lines []string
	for _, ts := range stamps(3000, time.Second/30, 100, 2000, 2001) {
		lines = append(lines, fmt.Sprintf("%d.%03d", ts/1000, ts%1000))
	}
	d := &DropDetector{}
	b.ResetTimer()
	for i := range b.N {
		us, _, _ := ParsePTSLine(lines[i%len(lines)])
		d.Next(us)
	}
}
