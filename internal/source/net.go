package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TCP connects to a publisher such as rpicam-vid --listen -o tcp://0.0.0.0:PORT.
type TCP struct {
	Addr string
	Log  *slog.Logger
}

func (t *TCP) String() string { return "tcp://" + t.Addr }

// Run implements Source.
func (t *TCP) Run(ctx context.Context, sink Sink) error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return fmt.Errorf("connect to publisher %s: %w", t.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = pump(ctx, conn, sink)
	if errors.Is(err, ErrEnded) {
		return fmt.Errorf("publisher %s closed the connection: %w", t.Addr, ErrEnded)
	}
	return err
}

// TCPListen accepts one publisher at a time on Addr; a second one is
// refused while the first is connected.
//
// A bare TCP stream carries no credentials, so who may publish is decided
// by address (Allow; the app applies tcp_allow, see
// auth.AllowTCPPublish). And the one slot is not held by a connection
// that sends no video: a publisher that delivers no access unit for
// Timeout, from connecting or since its last one, is dropped.
type TCPListen struct {
	Addr string
	Log  *slog.Logger
	// Allow, when set, decides whether a publisher at this address may
	// connect; a refused one gets a line saying so and is closed.
	Allow func(remote net.Addr) bool
	// Timeout is how long a publisher may send no video before it is
	// dropped; default DefaultPublishTimeout.
	Timeout time.Duration
	// ready, if set, gets the bound address (tests listen on port 0).
	ready func(net.Addr)
}

func (t *TCPListen) String() string { return "tcp-listen://" + t.Addr }

func (t *TCPListen) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultPublishTimeout
}

// Passive: the feed waits for a publisher to connect.
func (t *TCPListen) Passive() bool { return true }

// Run implements Source. It listens for the lifetime of one attempt; one
// goroutine accepts, hands the first publisher over, and refuses others
// while that one is connected.
func (t *TCPListen) Run(ctx context.Context, sink Sink) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", t.Addr)
	if err != nil {
		return fmt.Errorf("listen for publisher on %s: %w", t.Addr, err)
	}
	if t.ready != nil {
		t.ready(ln.Addr())
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	conns := make(chan net.Conn)
	var busy atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		defer close(conns)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if t.Allow != nil && !t.Allow(c.RemoteAddr()) {
				io.WriteString(c, "camfeed: this address may not publish to this feed (tcp_allow)\n")
				c.Close()
				continue
			}
			if !busy.CompareAndSwap(false, true) {
				t.Log.Warn("second publisher refused: one is already connected", "remote", c.RemoteAddr().String())
				io.WriteString(c, "camfeed: a publisher is already connected\n")
				c.Close()
				continue
			}
			select {
			case conns <- c:
			case <-ctx.Done():
				c.Close()
				return
			}
		}
	})
	psink, progress := progressOf(sink)
	for conn := range conns {
		t.Log.Info("publisher connected", "remote", conn.RemoteAddr().String())
		stopConn := context.AfterFunc(ctx, func() { conn.Close() })
		var dropped atomic.Bool
		stopWatch := WatchPublisher(progress, t.Timeout, func() {
			dropped.Store(true)
			conn.Close()
		})
		err := pump(ctx, conn, psink)
		stopWatch()
		stopConn()
		if dropped.Load() {
			err = fmt.Errorf("no video for %s: dropped, so that the slot is free for a real publisher", t.timeout())
		}
		conn.Close()
		if b, ok := sink.(InputBreaker); ok {
			b.NewInput() // the next publisher's stream starts from scratch
		}
		busy.Store(false)
		if ctx.Err() != nil {
			break
		}
		if dropped.Load() {
			t.Log.Warn("publisher dropped", "remote", conn.RemoteAddr().String(), "reason", err.Error())
			continue
		}
		t.Log.Info("publisher disconnected", "remote", conn.RemoteAddr().String(), "reason", publisherGone(err))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("publisher listener on %s closed", t.Addr)
}

// publisherGone puts the end of a publisher's connection in words: its
// hanging up is the normal end, not an error.
func publisherGone(err error) string {
	if err == nil || errors.Is(err, ErrEnded) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return "publisher closed the connection"
	}
	return err.Error()
}
