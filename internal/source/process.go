package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child gets after SIGINT before SIGKILL.
const stopGrace = 3 * time.Second

// process runs a child that writes H.264 to stdout. It gets its own process
// group, so a Ctrl-C meant for camfeed is not also delivered to the camera,
// and camfeed stops the whole group (a shell pipeline too): SIGINT first,
// SIGKILL after stopGrace.
type process struct {
	name string
	args []string
	log  *slog.Logger
	// label names the child in errors; name when empty. Exec says
	// "command": "/bin/sh exited" tells the user nothing.
	label string
	// explain turns a stderr line into a plain-words problem, or "".
	explain func(line string) string
	// seen, if set, holds the lines of the source's previous run: those
	// said again are logged at debug level (see stderrMemory).
	seen *stderrMemory
	// files become the child's fds 3, 4, ...; run closes them once the
	// child has its copies (or failed to start), so a reader of a pipe's
	// other end sees EOF when the child exits.
	files []*os.File
}

// stderrMemory remembers a source's stderr lines from one run to the next.
// A failing command retried with backoff says the same thing every time
// ("nosuchcmd: not found", ffmpeg's banner): the journal gets it once, and
// a line that differs, what a person needs, still stands out. The feed's
// WARN line says each retry's reason all the same. No lock: a source runs
// once at a time, and run waits for its stderr reader.
type stderrMemory struct {
	prev, this map[string]bool
}

// maxRemembered bounds the lines remembered from a run.
const maxRemembered = 64

// repeat reports whether line was said in the previous run, and notes it
// for the next.
func (m *stderrMemory) repeat(line string) bool {
	if m.this == nil {
		m.this = map[string]bool{}
	}
	if len(m.this) < maxRemembered {
		m.this[line] = true
	}
	return m.prev[line]
}

// next starts a new run.
func (m *stderrMemory) next() {
	m.prev, m.this = m.this, nil
}

func (p *process) run(ctx context.Context, sink Sink) error {
	cmd := exec.CommandContext(ctx, p.name, p.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = stopGrace
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	cmd.ExtraFiles = p.files
	err = cmd.Start()
	for _, f := range p.files {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	var wg sync.WaitGroup
	var problem, last string
	var pmu sync.Mutex
	stderrDone := make(chan struct{})
	wg.Go(func() {
		defer close(stderrDone)
		found, l := p.readStderr(stderr)
		pmu.Lock()
		problem, last = found, l
		pmu.Unlock()
	})
	perr := pump(ctx, stdout, sink)
	// Stop the child (if still running) and reap it; Wait closes the pipes.
	if ctx.Err() == nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	// Read stderr to its end before Wait, which closes the pipe: the last
	// line, where a command says why it failed, was lost about half the
	// time. The end comes when the group exits (SIGKILL at stopGrace); a
	// process outside the group that holds stderr open gets a second more.
	select {
	case <-stderrDone:
	case <-time.After(stopGrace + time.Second):
	}
	werr := cmd.Wait()
	close(done)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pmu.Lock()
	defer pmu.Unlock()
	if problem != "" {
		return errors.New(problem)
	}
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			return exitError(p.labelOr(), ee.ProcessState, last)
		}
		return fmt.Errorf("%s: %w", p.name, werr)
	}
	if errors.Is(perr, ErrEnded) {
		return fmt.Errorf("%s exited: %w", p.name, ErrEnded)
	}
	return perr
}

func (p *process) labelOr() string {
	if p.label != "" {
		return p.label
	}
	return p.name
}

// Exit statuses a shell gives when it cannot run a command (POSIX, "Shell
// Command Language", 2.8.2 Exit Status for Commands).
const (
	exitNotFound      = 127
	exitNotExecutable = 126
)

// maxErrLine bounds how much of the child's last stderr line goes into an
// error (the status page and /healthz show it).
const maxErrLine = 200

// exitError says why a child exited, in the words a person can act on:
// the shell's "not found" and "permission denied" become what they mean,
// and otherwise the child's last stderr line is quoted, since that is
// where ffmpeg, gst-launch and rpicam-vid say what went wrong.
func exitError(label string, ps *os.ProcessState, last string) error {
	if len(last) > maxErrLine {
		last = last[:maxErrLine] + "..."
	}
	switch ps.ExitCode() {
	case exitNotFound:
		if name := shellSubject(last); name != "" {
			return fmt.Errorf("command not found: %s", name)
		}
	case exitNotExecutable:
		if name := shellSubject(last); name != "" {
			return fmt.Errorf("permission denied: %s (not executable, or a directory)", name)
		}
	}
	if last != "" {
		return fmt.Errorf("%s exited with %v: %s", label, ps, last)
	}
	return fmt.Errorf("%s exited with %v", label, ps)
}

// shellSubject finds the command a shell could not run in its complaint:
// dash writes "/bin/sh: 1: nosuchcmd: not found", bash "sh: line 1:
// nosuchcmd: command not found" (and "...: Permission denied").
func shellSubject(line string) string {
	for _, tail := range []string{": not found", ": command not found", ": Permission denied", ": Is a directory"} {
		head, ok := strings.CutSuffix(line, tail)
		if !ok {
			continue
		}
		if i := strings.LastIndex(head, ": "); i >= 0 {
			return head[i+2:]
		}
		return head
	}
	return ""
}

// readStderr logs the child's stderr line by line (at most 20 lines a
// second; the rest are counted) and returns the last recognised problem
// and the last line.
func (p *process) readStderr(r io.Reader) (problem, last string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	var window time.Time
	lines, dropped := 0, 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = line
		if p.explain != nil {
			if s := p.explain(line); s != "" {
				problem = s
			}
		}
		if now := time.Now(); now.Sub(window) > time.Second {
			if dropped > 0 {
				p.log.Warn("child stderr lines not logged", "count", dropped)
			}
			window, lines, dropped = now, 0, 0
		}
		if p.seen != nil && p.seen.repeat(line) {
			p.log.Debug(line, "child", p.name, "repeated", true)
			continue
		}
		if lines++; lines > 20 {
			dropped++
			continue
		}
		p.log.Info(line, "child", p.name)
	}
	if p.seen != nil {
		p.seen.next()
	}
	return problem, last
}
