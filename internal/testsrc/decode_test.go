package testsrc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// encoded is a test stream with what each of its frames should decode to.
type encoded struct {
	cfg     Config
	stream  []byte      // Annex B
	luma    [][]byte    // expected Y plane of each frame, displayed size
	times   []time.Time // capture time of each frame
	keys    int
	idrMax  int // largest IDR access unit, bytes
	seconds float64
}

// encode makes a stream of frames frames, numbered from start.
func encode(t testing.TB, cfg Config, frames int, start int64) encoded {
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.frame = start
	e := encoded{cfg: g.Config()}
	c := e.cfg
	for i := 0; i < frames; i++ {
		ts := frameTime(i, c.FPS)
		nalus, key := g.Next(ts)
		n := len(e.stream)
		e.stream = AppendAnnexB(e.stream, nalus)
		if key {
			e.keys++
			e.idrMax = max(e.idrMax, len(e.stream)-n)
		}
		// g.prev is the picture just coded: Next swaps after encoding.
		e.luma = append(e.luma, bytes.Clone(g.prev[:c.Width*c.Height]))
		e.times = append(e.times, ts)
	}
	e.seconds = float64(frames) / float64(c.FPS)
	return e
}

// run runs a tool with stdin and returns stdout; anything on stderr fails
// the test, since the tools run with -v error.
func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testsupport.NeedTool(t, name), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestDecodeFFmpeg decodes streams with FFmpeg's H.264 decoder, told to
// stop at the first error of any kind, and checks that every frame comes
// out, bit-exact, with its time code.
//
// Exactness is checked on yuv420p output. With -pix_fmt gray only the time
// code is checked: FFmpeg expands limited range to full range when it
// converts to gray, as a browser canvas does, so 128 comes out as 130.
func TestDecodeFFmpeg(t *testing.T) {
	testsupport.NeedTool(t, "ffmpeg")
	cases := []struct {
		cfg    Config
		frames int
		start  int64 // number of the first frame
		pixFmt string
	}{
		{Config{Width: 640, Height: 480, Intra: 30}, 65, 0, "yuv420p"},
		{Config{Width: 640, Height: 480, Intra: 30}, 65, squareBackwards, "yuv420p"},
		{Config{Width: 640, Height: 480, Intra: 30}, 65, 0, "gray"},
		{Config{Width: 1920, Height: 1080, Intra: 10}, 65, 0, "yuv420p"},
		{Config{Width: 176, Height: 144}, 65, 0, "yuv420p"},
		{Config{Width: 64, Height: 64, Intra: 1}, 10, 0, "yuv420p"},
		{Config{Width: 64, Height: 128, FPS: 5}, 20, 0, "yuv420p"},
		{Config{Width: 640, Height: 360, FPS: 25, Intra: 600}, 90, 0, "yuv420p"},
		{Config{Width: 1280, Height: 720, FPS: 60, Intra: 60}, 130, 0, "yuv420p"},
	}
	for _, c := range cases {
		d := c.cfg.withDefaults()
		name := fmt.Sprintf("%dx%d@%d_intra%d_from%d_%s", d.Width, d.Height, d.FPS, d.Intra, c.start, c.pixFmt)
		t.Run(name, func(t *testing.T) {
			if testing.Short() && c.cfg.Width > 640 {
				t.Skip("large picture in -short mode")
			}
			t.Parallel()
			e := encode(t, c.cfg, c.frames, c.start)
			w, h := e.cfg.Width, e.cfg.Height
			size := w * h
			if c.pixFmt == "yuv420p" {
				size += w * h / 2
			}
			n := decode(t, e.stream, c.pixFmt, size, func(i int, frame []byte) {
				if i >= c.frames {
					t.Fatalf("more than %d frames decoded", c.frames)
				}
				y := frame[:w*h]
				if c.pixFmt == "yuv420p" {
					if !bytes.Equal(y, e.luma[i]) {
						j := firstDiff(y, e.luma[i])
						t.Fatalf("frame %d: luma differs at (%d,%d), macroblock (%d,%d): got %d, want %d",
							i, j%w, j/w, j%w/16, j/w/16, y[j], e.luma[i][j])
					}
					if c := frame[w*h:]; len(bytes.Trim(c, "\x80")) != 0 {
						t.Fatalf("frame %d: chroma is not all 128", i)
					}
				}
				got, err := ReadTimeCode(y, w, h)
				if err != nil || got.UnixMilli() != e.times[i].UnixMilli() {
					t.Fatalf("frame %d: time code %v (%v), want %v", i, got, err, e.times[i])
				}
			})
			if n != c.frames {
				t.Fatalf("decoded %d frames of %dx%d, want %d", n, w, h, c.frames)
			}
		})
	}
}

// decode decodes an Annex B stream with FFmpeg, told to stop at the first
// error of any kind, and calls each with every raw frame of size bytes
// (the buffer is reused). It returns the number of frames; a partial
// frame or anything on stderr fails the test.
func decode(t *testing.T, stream []byte, pixFmt string, size int, each func(i int, frame []byte)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testsupport.NeedTool(t, "ffmpeg"), "-hide_banner", "-nostdin", "-v", "error",
		"-xerror", "-err_detect", "explode",
		"-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", pixFmt, "-")
	cmd.Stdin = bytes.NewReader(stream)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited { // a check failed: stop FFmpeg, which may be blocked writing
			cancel()
			_ = cmd.Wait()
		}
	}()
	frame := make([]byte, size)
	n := 0
	for {
		_, err := io.ReadFull(stdout, frame)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		each(n, frame)
		n++
	}
	waited = true
	if err := cmd.Wait(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.Bytes())
	}
	return n
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestProbeFFprobe(t *testing.T) {
	testsupport.NeedTool(t, "ffprobe")
	cases := []struct {
		cfg               Config
		width, height     string
		level, rFrameRate string
	}{
		{Config{}, "640", "480", "30", "30/1"},
		{Config{Width: 1920, Height: 1080}, "1920", "1080", "40", "30/1"},
		{Config{Width: 640, Height: 360, FPS: 25}, "640", "360", "30", "25/1"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%+v", c.cfg), func(t *testing.T) {
			e := encode(t, c.cfg, 40, 0)
			out := run(t, e.stream, "ffprobe", "-hide_banner", "-v", "error", "-f", "h264", "-i", "-",
				"-select_streams", "v:0", "-show_entries", "stream=codec_name,profile,width,height,pix_fmt,level,r_frame_rate",
				"-of", "default=noprint_wrappers=1")
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				k, v, _ := strings.Cut(line, "=")
				got[k] = v
			}
			want := map[string]string{
				"codec_name": "h264", "profile": "Constrained Baseline", "pix_fmt": "yuv420p",
				"width": c.width, "height": c.height, "level": c.level, "r_frame_rate": c.rFrameRate,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// TestBitRate measures the stream over whole seconds, and checks it is
// within what its level allows (Table A-1: MaxBR, and MaxCPB for the
// largest picture).
func TestBitRate(t *testing.T) {
	cases := []struct {
		cfg     Config
		seconds int
		limit   float64 // bit/s; 0 for the level's limit only
	}{
		{Config{Width: 640, Height: 480, FPS: 30, Intra: 30}, 3, 5e6},
		{Config{Width: 1920, Height: 1080, FPS: 30, Intra: 30}, 3, 0},
		{Config{Width: 1920, Height: 1080, FPS: 30, Intra: 10}, 3, 0},
		{Config{Width: 1280, Height: 720, FPS: 60, Intra: 60}, 2, 0},
		{Config{Width: 176, Height: 144, FPS: 30, Intra: 30}, 2, 0},
		{Config{Width: 640, Height: 480, FPS: 30, Intra: 1}, 1, 0},
	}
	for _, c := range cases {
		e := encode(t, c.cfg, c.seconds*c.cfg.FPS, 0)
		rate := float64(len(e.stream)) * 8 / e.seconds
		g, _ := New(c.cfg)
		var lv level
		for _, l := range levels {
			if l.idc == g.seq.levelIDC {
				lv = l
			}
		}
		t.Logf("%dx%d@%d intra %d: %.2f Mbit/s, largest IDR %d KiB, level %d.%d",
			c.cfg.Width, c.cfg.Height, c.cfg.FPS, c.cfg.Intra, rate/1e6, e.idrMax>>10, lv.idc/10, lv.idc%10)
		if c.limit > 0 && rate >= c.limit {
			t.Errorf("%+v: %.2f Mbit/s, want below %.2f", c.cfg, rate/1e6, c.limit/1e6)
		}
		if rate > float64(lv.maxBR)*1000 || e.idrMax*8 > lv.maxCPB*1000 {
			t.Errorf("%+v: %.2f Mbit/s and IDR of %d bits exceed level %d", c.cfg, rate/1e6, e.idrMax*8, lv.idc)
		}
	}
}
