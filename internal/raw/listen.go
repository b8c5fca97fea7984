package raw

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
)

// Listener serves one feed to every connection on a TCP or unix listener:
// connect and read, nothing to send (nc HOST PORT | ffplay -).
type Listener struct {
	Door *door.Door
	Feed string
	Log  *slog.Logger
	// Allow, if set, may refuse a connection by its remote address (the
	// raw TCP output has no other way to authenticate).
	Allow   func(remote net.Addr) bool
	Observe Observe
	// WriteTimeout is how long one write may block (0:
	// DefaultWriteTimeout).
	WriteTimeout time.Duration

	fanouts hub.Fanouts
}

// Serve accepts connections on ln until ctx ends, then closes them all and
// returns once every connection's goroutine is done.
func (l *Listener) Serve(ctx context.Context, ln net.Listener, output string) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("%s accept: %w", output, err)
		}
		if l.Allow != nil && !l.Allow(conn.RemoteAddr()) {
			l.Door.Log(ctx, slog.LevelWarn, "raw viewer refused by the tcp_allow list", "output", output, "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		s, err := l.Door.Enter(door.Who{Feed: l.Feed, Protocol: output, Remote: conn.RemoteAddr().String()})
		if err != nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.Write([]byte("camfeed: " + err.Error() + "\n"))
			conn.Close()
			continue
		}
		wg.Go(func() { l.serveConn(ctx, conn, output, s) })
	}
}

func (l *Listener) serveConn(ctx context.Context, conn net.Conn, output string, s *door.Session) {
	defer conn.Close()
	TuneConn(conn)
	err := serveBare(ctx, conn, s, &l.fanouts, l.WriteTimeout, l.Observe.get(l.Feed, output))
	s.Leave(Reason(err))
}

// ListenUnix creates DIR/FEED.sock (removing a stale one) for local
// consumers on the same machine, readable by the owner and group.
func ListenUnix(dir, feed string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("unix socket dir: %w", err)
	}
	path := filepath.Join(dir, feed+".sock")
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path) // stale from an earlier run
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	_ = os.Chmod(path, 0o660)
	return ln, nil
}

// FIFO writes a feed into a named pipe for one local reader at a time. It
// creates the pipe if needed, waits (without blocking anything) for a
// reader to open it, and when the reader goes away waits for the next.
// A slow reader skips ahead like any viewer; the camera never waits.
type FIFO struct {
	Path    string
	Door    *door.Door
	Feed    string
	Log     *slog.Logger
	Observe Observe
	// WriteTimeout is how long one write may block (0:
	// DefaultWriteTimeout).
	WriteTimeout time.Duration
}

// Run serves the FIFO until ctx ends.
func (f *FIFO) Run(ctx context.Context) error {
	if err := syscall.Mkfifo(f.Path, 0o644); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("fifo %s: %w", f.Path, err)
	}
	if fi, err := os.Stat(f.Path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return fmt.Errorf("fifo %s: exists and is not a named pipe", f.Path)
	}
	for {
		// O_NONBLOCK: open fails with ENXIO at once while no reader has
		// the pipe open, instead of blocking a thread.
		w, err := os.OpenFile(f.Path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			if !errors.Is(err, syscall.ENXIO) {
				return fmt.Errorf("fifo %s: %w", f.Path, err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		f.serve(ctx, w)
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (f *FIFO) serve(ctx context.Context, w *os.File) {
	defer w.Close()
	s, err := f.Door.Enter(door.Who{Feed: f.Feed, Protocol: door.FIFO, Remote: f.Path})
	if err != nil {
		f.Log.Warn("fifo reader refused", "path", f.Path, "reason", err)
		// Wait before the next open: the reader stays connected and would
		// otherwise be refused in a busy loop.
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	err = Serve(ctx, s.Sub, w, nil, w.SetWriteDeadline, f.WriteTimeout, f.Observe.get(f.Feed, door.FIFO))
	reason := "reader closed the pipe"
	if !isDisconnect(err) {
		reason = Reason(err)
	}
	s.Leave(reason)
}

// serveBare streams s to a connection the viewer only reads from, through
// fs's fan-out for its feed when conn is a socket (see fanout). A read
// returning means the viewer hung up, which ends the stream at once
// instead of at the next failed write; bytes it sends are ignored. It
// closes conn and waits for its reader before it returns.
func serveBare(ctx context.Context, conn net.Conn, s *door.Session, fs *hub.Fanouts, timeout time.Duration, obs Observer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hungUp := make(chan struct{})
	go func() {
		defer close(hungUp)
		var b [64]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				cancel()
				return
			}
		}
	}()
	// A viewer blocked in a write, its client not reading, must not hold
	// up a shutdown (or its own end) for the write timeout: closing the
	// connection ends the write at once.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var err error
	if rc := rawConn(conn); rc != nil {
		fo := fs.Join(s.Hub())
		err = serveFanout(ctx, fo, s.Sub, conn, rc, timeout, obs)
		fo.Leave()
	} else {
		err = Serve(ctx, s.Sub, conn, nil, conn.SetWriteDeadline, timeout, obs)
	}
	if ctx.Err() != nil {
		// Ended by the server or by the client hanging up (the write
		// that failed then is the one the close above cut short): a
		// normal end, as Serve reports it.
		err = nil
	}
	conn.Close()
	<-hungUp
	return err
}

// rawConn returns the socket under conn for the fan-out's non-blocking
// writes, looking through wrappers that expose it as NetConn (the
// per-address connection limit), or nil: under TLS the bytes must go
// through the TLS connection.
func rawConn(conn net.Conn) syscall.RawConn {
	for {
		switch c := conn.(type) {
		case *tls.Conn:
			return nil
		case syscall.Conn:
			rc, err := c.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ NetConn() net.Conn }:
			conn = c.NetConn()
		default:
			return nil
		}
	}
}
