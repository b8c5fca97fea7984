package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// testsrcHint says where the stream can go instead of a terminal.
const testsrcHint = `camfeed testsrc writes H.264 video to standard output, which is a terminal here.
Send it somewhere that takes video, for example:
  camfeed testsrc | ffplay -f h264 -                 watch it
  camfeed testsrc | camfeed --source stdin           serve it
  camfeed testsrc --frames 300 > pattern.h264        save 10 seconds to a file`

// runTestsrc writes the test pattern to stdout in real time, as Annex-B.
func runTestsrc(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camfeed testsrc", flag.ContinueOnError)
	w := fs.Int("width", testsrc.DefaultWidth, "picture width (multiple of 16)")
	h := fs.Int("height", testsrc.DefaultHeight, "picture height (multiple of 8)")
	fps := fs.Int("fps", testsrc.DefaultFPS, "frames per second")
	intra := fs.Int("intra", testsrc.DefaultIntra, "keyframe period in frames")
	frames := fs.Int("frames", 0, "stop after this many frames (0: run until interrupted)")
	fast := fs.Bool("fast", false, "do not pace frames in real time")
	if code, done := parseFlags(fs, args, "camfeed testsrc [flags] | PROGRAM   (or > FILE.h264)\n\nWrites the built-in test pattern to standard output as H.264 (Annex-B), in real time.", stdout, stderr); done {
		return code
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(stderr, testsrcHint)
		return 2
	}
	g, err := testsrc.New(testsrc.Config{Width: *w, Height: *h, FPS: *fps, Intra: *intra})
	if err != nil {
		fmt.Fprintln(stderr, "camfeed testsrc:", err)
		return 2
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	var buf []byte
	write := func(nalus [][]byte) error {
		buf = testsrc.AppendAnnexB(buf[:0], nalus)
		if _, err := out.Write(buf); err != nil {
			return err
		}
		return out.Flush()
	}
	if *fast {
		t := time.Now()
		for n := 0; *frames <= 0 || n < *frames; n++ {
			nalus, _ := g.Next(t.Add(time.Duration(n) * time.Second / time.Duration(*fps)))
			if err := write(nalus); err != nil {
				return 1
			}
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	defer stop()
	err = g.Run(ctx, *frames, func(nalus [][]byte, _ bool, _ time.Time) error { return write(nalus) })
	if err != nil && ctx.Err() == nil {
		return 1 // stdout closed: the reader went away
	}
	return 0
}
