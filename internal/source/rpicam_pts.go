package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ptsFile is where rpicam-vid writes its timestamps: the write end of a
// pipe, passed as the child's fd 3 (exec.Cmd.ExtraFiles[0]). rpicam-vid
// opens it with fopen, which on Linux reopens the same pipe.
const ptsFile = "/dev/fd/3"

// Timing of the --save-pts plumbing.
const (
	// helpTimeout bounds `rpicam-vid --help`, which only prints.
	helpTimeout = 5 * time.Second
	// ptsDrain is how long the timestamp reader may go on after the child
	// was reaped: EOF comes at once, unless a process outside the child's
	// group holds the pipe open.
	ptsDrain = time.Second
	// DropLogEvery is the most often the drops are logged.
	DropLogEvery = time.Minute
)

// FrameDrops counts the frames a camera dropped, read from rpicam-vid's
// sensor timestamps. One lives for each feed as long as camfeed runs, so
// the count is the total since start, whatever restarts the child or a
// reload replaces the source. Safe for concurrent use.
type FrameDrops struct {
	total atomic.Uint64
	seen  atomic.Bool // a timestamp was read: the count means something

	mu      sync.Mutex
	pending uint64 // dropped since the last log line
	logged  time.Time
}

// Count returns the frames dropped since start; ok is false until a
// timestamp has been read (no --save-pts: the libav encoder, an old
// rpicam-vid), when there is no figure to show.
func (d *FrameDrops) Count() (n uint64, ok bool) {
	if d == nil || !d.seen.Load() {
		return 0, false
	}
	return d.total.Load(), true
}

// add counts n frames dropped at now, and logs what was dropped since
// the last log line at most once every DropLogEvery: at once after a
// quiet spell, then what followed a minute later.
func (d *FrameDrops) add(n int, now time.Time, log *slog.Logger) {
	d.seen.Store(true)
	if n > 0 {
		d.total.Add(uint64(n))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending += uint64(max(n, 0))
	if d.pending == 0 || now.Sub(d.logged) < DropLogEvery {
		return
	}
	frames := "frames"
	if d.pending == 1 {
		frames = "frame"
	}
	log.Warn(fmt.Sprintf("camera dropped %d %s in the last minute (sensor timestamps): the Pi is short of CPU, memory bandwidth or power, or the mode's frame rate is too high", d.pending, frames),
		"dropped", d.pending, "total", d.total.Load())
	d.pending, d.logged = 0, now
}

// readPTS reads a --save-pts stream to its end (or an error), counting
// drops into drops. It never stops early on bad input: rpicam-vid must
// never block writing to the pipe.
func readPTS(r io.Reader, det *DropDetector, drops *FrameDrops, log *slog.Logger) {
	br := bufio.NewReaderSize(r, 4096)
	badSaid := false
	long := false // inside a line longer than the buffer
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if len(line) > 0 && !long {
			us, ok, perr := ParsePTSLine(string(bytes.TrimRight(line, "\n")))
			switch {
			case perr != nil:
				if !badSaid { // once a run: the next line is likely no better
					log.Info("rpicam-vid wrote a timestamp camfeed cannot read; frames dropped may be undercounted", "err", perr)
					badSaid = true
				}
			case ok:
				drops.add(det.Next(us), time.Now(), log)
			}
		}
		long = false
		if err != nil {
			return
		}
	}
}

// wantsPTS reports whether to ask rpicam-vid for its timestamps. The
// libav encoder (Software, which a Pi 5 always uses, or --codec libav in
// extra_args) refuses --save-pts unless the output is a .264 file name
// (rpicam-apps encoder/libav_encoder.cpp: "libav: Incompatible options
// selected"), and a user's own --save-pts wins.
func (r *RPiCam) wantsPTS() bool {
	if r.Drops == nil || r.Software {
		return false
	}
	for i, a := range r.ExtraArgs {
		switch {
		case a == "--save-pts", strings.HasPrefix(a, "--save-pts="):
			return false
		case a == "--codec" && i+1 < len(r.ExtraArgs) && r.ExtraArgs[i+1] != "h264",
			strings.HasPrefix(a, "--codec=") && a != "--codec=h264":
			return false
		}
	}
	return true
}

// knowsPTS reports whether bin has --save-pts, from its --help (asked once
// per binary). It has been in libcamera-vid since 2021, but an unknown
// option would stop the camera, so an older one, or one whose --help
// fails, runs without it.
func (r *RPiCam) knowsPTS(ctx context.Context, bin string) bool {
	if r.ptsBin == bin {
		return r.ptsKnown
	}
	ctx, cancel := context.WithTimeout(ctx, helpTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	r.ptsBin, r.ptsKnown = bin, bytes.Contains(out, []byte("--save-pts"))
	if !r.ptsKnown && ctx.Err() == nil {
		r.Log.Info("this rpicam-vid has no --save-pts: frames dropped by the camera are not counted (update rpicam-apps)", "tool", bin)
	}
	return r.ptsKnown
}

// runWithPTS runs p with rpicam-vid's timestamps on a pipe, read by a
// goroutine that this waits for. Both ends are closed on every path: the
// write end once the child has it (process.run), the read end here.
func (r *RPiCam) runWithPTS(ctx context.Context, p *process, sink Sink) error {
	rd, wr, err := os.Pipe()
	if err != nil {
		r.Log.Warn("cannot count frames dropped by the camera", "err", fmt.Errorf("pipe: %w", err))
		return p.run(ctx, sink)
	}
	defer rd.Close()
	defer wr.Close()
	p.args = r.args(ptsFile)
	p.files = []*os.File{wr}
	det := &DropDetector{}
	if r.Framerate > 0 {
		det.Period = time.Duration(float64(time.Second) / r.Framerate)
	}
	// Written by p's stderr reader, which p.run waits for.
	refused := false
	explain := p.explain
	p.explain = func(line string) string {
		refused = refused || ptsRefused(line)
		return explain(line)
	}
	var wg sync.WaitGroup
	wg.Go(func() { readPTS(rd, det, r.Drops, r.Log) })
	err = p.run(ctx, sink)
	wr.Close()
	_ = rd.SetReadDeadline(time.Now().Add(ptsDrain))
	wg.Wait()
	if refused {
		// The next run goes without: one failed start, then video.
		r.ptsKnown = false
		r.Log.Warn("rpicam-vid refused --save-pts (its libav encoder, or an old rpicam-vid): frames dropped by the camera are not counted; starting it again without")
	}
	return err
}

// ptsRefused reports whether a line of rpicam-vid's stderr says it will
// not write timestamps: an rpicam-vid too old to know the option, or
// the libav encoder, which a board other than a Pi 5 that has no H.264
// encoder may pick on its own (rpicam-apps encoder/libav_encoder.cpp:
// "...does not currently support the circular, segment, save_pts, ...",
// then "libav: Incompatible options selected").
func ptsRefused(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "save_pts") || strings.Contains(l, "incompatible options") ||
		strings.Contains(l, "--save-pts") && (strings.Contains(l, "unrecognised option") || strings.Contains(l, "unrecognized option"))
}

// CameraDrops returns the frames the camera dropped since camfeed
// started; ok is false when there is no figure (see FrameDrops.Count).
func (r *RPiCam) CameraDrops() (n uint64, ok bool) { return r.Drops.Count() }
