package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Stdin reads Annex-B H.264 from standard input, e.g.
// rpicam-vid -t 0 --inline -o - | camfeed --source stdin.
type Stdin struct {
	Log *slog.Logger

	fd int // the descriptor read; 0 (standard input) but in tests
}

func (Stdin) String() string { return "stdin" }

// Passive: stdin produces nothing until its writer does.
func (Stdin) Passive() bool { return true }

// Run implements Source. Standard input cannot be reopened: once it ends
// the feed waits for nothing, so Run blocks until ctx ends.
//
// A read of a descriptor that blocks cannot be interrupted, so a writer
// that stops sending (or a terminal nobody types in) would hold shutdown
// until it goes away. Run reads a duplicate of the descriptor in
// non-blocking mode instead, through Go's poller, where a read deadline
// ends the read when ctx ends. Pipes, FIFOs, sockets and terminals work
// this way; a regular file never blocks for long. O_NONBLOCK belongs to
// the open file, which a terminal shares with the shell, so Run puts it
// back as it found it.
func (s Stdin) Run(ctx context.Context, sink Sink) error {
	f, restore, err := pollable(s.fd)
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	defer restore()
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	err = pump(ctx, f, sink)
	if errors.Is(err, ErrEnded) {
		s.Log.Warn("standard input ended; the feed has no more video until camfeed restarts")
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

// pollable returns a non-blocking duplicate of fd as an *os.File, which
// supports read deadlines, and a function that closes it and gives the
// open file back its blocking mode.
func pollable(fd int) (*os.File, func(), error) {
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, nil, err
	}
	wasNonblock := isNonblock(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		syscall.Close(dup)
		return nil, nil, err
	}
	f := os.NewFile(uintptr(dup), "stdin") // non-blocking: Go's poller reads it
	return f, func() {
		f.Close()
		if !wasNonblock {
			_ = syscall.SetNonblock(fd, false)
		}
	}, nil
}

func isNonblock(fd int) bool {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	return errno == 0 && flags&syscall.O_NONBLOCK != 0
}
