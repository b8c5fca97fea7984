package source

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// unitSink parses what it gets, as the feed's sink does, and counts the
// access units (UnitCounter).
type unitSink struct {
	mu    sync.Mutex
	p     *h264.Parser
	units atomic.Uint64
}

func newUnitSink() *unitSink { return &unitSink{p: h264.NewParser(h264.ParserConfig{})} }

func (s *unitSink) emit(*h264.AccessUnit) { s.units.Add(1) }
func (s *unitSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Write(b, time.Now(), s.emit)
	return len(b), nil
}
func (s *unitSink) Idle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Flush(time.Now(), s.emit)
}
func (s *unitSink) WriteAU(nalus [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.WriteAU(nalus, time.Now(), s.emit)
}
func (s *unitSink) Units() uint64 { return s.units.Load() }

// publishTestPattern sends the test pattern to conn in real time until
// ctx ends or the connection fails.
func publishTestPattern(ctx context.Context, conn net.Conn) {
	g, _ := testsrc.New(testsrc.Config{Width: 64, Height: 64, FPS: 30, Intra: 10})
	_ = g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
		_, err := conn.Write(testsrc.AppendAnnexB(nil, nalus))
		return err
	})
}

// closedWithin reports whether the server closes conn within d.
func closedWithin(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	return !errors.Is(err, os.ErrDeadlineExceeded) // EOF, or a reset after unread data
}

// takeSlot connects to addr as the publisher, retrying while the slot is
// still held by one being dropped (for up to 20 s).
func takeSlot(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if !closedWithin(c, 100*time.Millisecond) {
			c.SetReadDeadline(time.Time{})
			return c
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("could not take the publisher slot in 20 s")
		}
	}
}

// TestHostileTCPListenIdlePublisher: a connection that sent nothing held
// the one publisher slot for 100+ s, and the real publisher was refused.
// Now a publisher that makes no video (silence, or bytes that are not
// H.264) is dropped after the timeout, and the real one gets in.
func TestHostileTCPListenIdlePublisher(t *testing.T) {
	addrc := make(chan net.Addr, 1)
	src := &TCPListen{Addr: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler), Timeout: 500 * time.Millisecond,
		ready: func(a net.Addr) { addrc <- a }}
	sink := newUnitSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := (<-addrc).String()

	for _, attack := range []string{"silent", "garbage"} {
		idle := takeSlot(t, addr)
		if attack == "garbage" {
			go func() {
				rnd := rand.New(rand.NewPCG(1, 2))
				buf := make([]byte, 512)
				for {
					for i := range buf {
						buf[i] = byte(rnd.IntN(256)) | 0x80 // never a start code
					}
					if _, err := idle.Write(buf); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		real, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := io.ReadAll(real); !strings.Contains(string(msg), "already connected") {
			t.Errorf("%s: real publisher while the slot is held got %q, %v", attack, msg, err)
		}
		if !closedWithin(idle, 20*time.Second) {
			t.Fatalf("%s publisher still connected after 20 s", attack)
		}
		idle.Close()
	}

	// The real publisher gets in and its video flows.
	real := takeSlot(t, addr)
	defer real.Close()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go publishTestPattern(pctx, real)
	deadline := time.Now().Add(20 * time.Second)
	for sink.Units() < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("real publisher: %d units after 20 s", sink.Units())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHostileTCPListenNotAllowed: with an allow-list, an address not on
// it cannot publish (it used to replace the picture anonymously even when
// users were configured); an allowed one can.
func TestHostileTCPListenNotAllowed(t *testing.T) {
	addrc := make(chan net.Addr, 1)
	var allowed atomic.Bool
	src := &TCPListen{Addr: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler),
		Allow: func(net.Addr) bool { return allowed.Load() },
		ready: func(a net.Addr) { addrc <- a }}
	sink := newUnitSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := (<-addrc).String()

	intruder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	go publishTestPattern(pctx, intruder)
	if !closedWithin(intruder, 20*time.Second) {
		t.Fatal("a publisher not allowed stayed connected")
	}
	pcancel()
	intruder.Close()
	if n := sink.Units(); n != 0 {
		t.Errorf("%d units from a publisher not allowed", n)
	}

	allowed.Store(true)
	real, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	go publishTestPattern(ctx, real)
	deadline := time.Now().Add(20 * time.Second)
	for sink.Units() < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("allowed publisher: %d units after 20 s", sink.Units())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
