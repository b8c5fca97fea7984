package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// explain turns a stderr line into a plain-words problem, or "".
	explain func(line string) string
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
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	var wg sync.WaitGroup
	var problem string
	var pmu sync.Mutex
	wg.Go(func() {
		found := p.readStderr(stderr)
		pmu.Lock()
		problem = found
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
			return fmt.Errorf("%s exited with %v", p.name, ee.ProcessState)
		}
		return fmt.Errorf("%s: %w", p.name, werr)
	}
	if errors.Is(perr, ErrEnded) {
		return fmt.Errorf("%s exited: %w", p.name, ErrEnded)
	}
	return perr
}

// readStderr logs the child's stderr line by line (at most 20 lines a
// second; the rest are counted) and returns the last recognised problem.
func (p *process) readStderr(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	var problem string
	var window time.Time
	lines, dropped := 0, 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
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
		if lines++; lines > 20 {
			dropped++
			continue
		}
		p.log.Info(line, "child", p.name)
	}
	return problem
}
