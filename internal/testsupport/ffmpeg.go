package testsupport

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Probe is what ffprobe says of a media file.
type Probe struct {
	Duration  float64 // format duration, seconds
	Frames    int     // frames decoded (the first video stream's)
	Streams   int
	FirstKey  bool // the first packet is a keyframe
	Width     int
	Height    int
	Packets   int
	Discarded int // packets decoded but not shown (edit list)
}

// FFprobe runs ffprobe on path, decoding every frame to count them. Any
// error ffprobe reports fails the test, so it also checks that the file
// decodes cleanly.
func FFprobe(t testing.TB, path string) Probe {
	t.Helper()
	bin := NeedTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-print_format", "json", "-count_frames",
		"-show_format", "-show_streams", "-show_packets", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", filepath.Base(path), err, stderr.String())
	}
	var v struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Width, Height int
			NbReadFrames  string `json:"nb_read_frames"`
		} `json:"streams"`
		Packets []struct {
			Flags string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	var p Probe
	p.Duration, _ = strconv.ParseFloat(v.Format.Duration, 64)
	p.Streams = len(v.Streams)
	if len(v.Streams) > 0 {
		p.Frames, _ = strconv.Atoi(v.Streams[0].NbReadFrames)
		p.Width, p.Height = v.Streams[0].Width, v.Streams[0].Height
	}
	p.Packets = len(v.Packets)
	p.FirstKey = len(v.Packets) > 0 && v.Packets[0].Flags != "" && v.Packets[0].Flags[0] == 'K'
	for _, pk := range v.Packets {
		if len(pk.Flags) > 1 && pk.Flags[1] == 'D' {
			p.Discarded++
		}
	}
	return p
}

// Decodes fails the test unless ffmpeg decodes the file at path without
// a single error.
func Decodes(t testing.TB, path string) {
	t.Helper()
	bin := NeedTool(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("ffmpeg decode of %s: %v\n%s", filepath.Base(path), err, out)
	}
}

// DecodeAnnexB runs ffmpeg on an Annex-B H.264 stream and returns its
// error output (empty when the stream decodes cleanly) and the number of
// frames it decoded.
func DecodeAnnexB(t testing.TB, data []byte) (string, int) {
	t.Helper()
	ffmpeg := NeedTool(t, "ffmpeg")
	f, err := os.CreateTemp(t.TempDir(), "*.h264")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-f", "h264", "-i", f.Name(), "-f", "framecrc", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.String() + err.Error(), 0
	}
	frames := 0
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			frames++
		}
	}
	return stderr.String(), frames
}

// SampleSpacings returns the decode-time spacing of the first video
// stream's consecutive samples in path, in its time base's ticks.
func SampleSpacings(t testing.TB, path string) []int64 {
	t.Helper()
	bin := NeedTool(t, "ffprobe")
	out, err := Run(t, 2*time.Minute, bin, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts", "-of", "csv=p=0", path)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", filepath.Base(path), err, out)
	}
	var d []int64
	var prev int64
	for i, f := range strings.Fields(out) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: %q", filepath.Base(path), f)
		}
		if i > 0 {
			d = append(d, v-prev)
		}
		prev = v
	}
	return d
}

// Reencodes fails the test unless ffmpeg re-encodes the file at path
// with libx264 without complaining about its timestamps ("non
// monotonically increasing dts", which samples a tick apart cause).
func Reencodes(t testing.TB, path string) {
	t.Helper()
	bin := NeedTool(t, "ffmpeg")
	out, err := Run(t, 2*time.Minute, bin, "-v", "warning", "-nostdin", "-i", path,
		"-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-")
	if err != nil || strings.Contains(out, "non monotonically") {
		t.Fatalf("ffmpeg re-encoding %s: %v\n%s", filepath.Base(path), err, out)
	}
}
