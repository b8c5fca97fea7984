package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"

	"github.com/camfeed/camfeed/internal/h264"
)

// ffmpeg finds the ffmpeg binary, or returns ErrNoFFmpeg.
func (s *Server) ffmpeg() (string, error) {
	name := s.cfg.FFmpeg
	if name == "" {
		name = "ffmpeg"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", ErrNoFFmpeg
	}
	return p, nil
}

// decodeJPEG decodes units (a keyframe and the units after it, Annex-B)
// with ffmpeg and returns the last picture as a JPEG. The select filter
// drops every picture but the last before the JPEG encoder, so only one
// is encoded; the rest are decoded because the last refers to them.
func decodeJPEG(ctx context.Context, ffmpeg string, units []*h264.AccessUnit) ([]byte, error) {
	cmd := exec.CommandContext(ctx, ffmpeg,
		"-hide_banner", "-loglevel", "error",
		"-f", "h264", "-i", "pipe:0",
		"-vf", "select=eq(n\\,"+strconv.Itoa(len(units)-1)+")",
		"-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3",
		"-f", "image2pipe", "pipe:1")
	setProcessGroup(cmd)
	// Data is Annex-B, ready to concatenate: ffmpeg reads the shared
	// units through a list of slices, nothing is copied.
	in := make(net.Buffers, len(units))
	for i, au := range units {
		in[i] = au.Data
	}
	var out, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("ffmpeg: %w", ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, firstLine(stderr.String()))
	}
	if !bytes.HasPrefix(out.Bytes(), []byte{0xff, 0xd8}) {
		return nil, errors.New("ffmpeg gave no picture: " + firstLine(stderr.String()))
	}
	return out.Bytes(), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
