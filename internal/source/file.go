package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// File plays a recorded Annex-B file in a loop at its frame rate, for
// demos; a FIFO is read as a live stream instead, and reopened whenever
// its writer goes away (the mkfifo publisher/puller split done right:
// camfeed drains the pipe continuously, so nothing stale piles up).
type File struct {
	Path string
	// FPS paces a regular file when its SPS has no timing info.
	FPS float64
	Log *slog.Logger
}

func (f *File) String() string { return "file:" + f.Path }

// Run implements Source.
func (f *File) Run(ctx context.Context, sink Sink) error {
	st, err := os.Stat(f.Path)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	if st.Mode()&os.ModeNamedPipe != 0 {
		return f.runFIFO(ctx, sink)
	}
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	return f.loop(ctx, data, sink)
}

// runFIFO reads a named pipe as a live stream. It holds the read end open
// without blocking (O_NONBLOCK), so it never waits in open(2) and can be
// cancelled; while no writer is connected a read returns EOF, so it polls
// every 100 ms, and a new writer's bytes arrive on the same descriptor.
func (f *File) runFIFO(ctx context.Context, sink Sink) error {
	fd, err := os.OpenFile(f.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("fifo source: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { fd.Close() })
	defer stop()
	defer fd.Close()
	for {
		err := pump(ctx, fd, sink)
		if !errors.Is(err, ErrEnded) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loop paces access units of a file by the frame rate and loops forever.
func (f *File) loop(ctx context.Context, data []byte, sink Sink) error {
	var units [][][]byte
	p := h264.NewParser(h264.ParserConfig{})
	collect := func(au *h264.AccessUnit) { units = append(units, au.NALUs) }
	p.Write(data, time.Now(), collect)
	p.Flush(time.Now(), collect)
	if len(units) == 0 {
		return fmt.Errorf("file source: %s has no decodable H.264 (it must be raw Annex-B, e.g. ffmpeg -c copy -f h264)", f.Path)
	}
	fps := f.FPS
	if _, _, info, _ := p.Params(); info.FPS > 0 {
		fps = info.FPS
	}
	if fps <= 0 {
		fps = 30
	}
	interval := time.Duration(float64(time.Second) / fps)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, nalus := range units {
			sink.WriteAU(nalus)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}
