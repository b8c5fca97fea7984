package source

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

func TestRPiCamArgs(t *testing.T) {
	tests := []struct {
		name string
		cam  RPiCam
		want string
	}{
		{"defaults", RPiCam{}, "--nopreview --timeout 0 --inline --flush --codec h264 --camera 0 -o -"},
		{"pi5 software encoder", RPiCam{Software: true, Camera: 1, Mode: "2304:1296:10:P", VFlip: true},
			"--nopreview --timeout 0 --inline --flush --codec libav --libav-format h264 --libav-video-codec libx264 --low-latency --camera 1 --mode 2304:1296:10:P --vflip -o -"},
		{"fractional framerate", RPiCam{Framerate: 29.97}, "--nopreview --timeout 0 --inline --flush --codec h264 --camera 0 --framerate 29.97 -o -"},
	}
	for _, tc := range tests {
		if got := strings.Join(tc.cam.Args(), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestIsPi5(t *testing.T) {
	dir := t.TempDir()
	for model, want := range map[string]bool{
		"Raspberry Pi 5 Model B Rev 1.0\x00":        true,
		"Raspberry Pi 500 Rev 1.0\x00":              true,
		"Raspberry Pi Compute Module 5 Rev 1.0\x00": true,
		"Raspberry Pi Compute Module 4 Rev 1.0\x00": false,
		"Raspberry Pi 4 Model B Rev 1.4\x00":        false,
		"Raspberry Pi Zero 2 W Rev 1.0\x00":         false,
	} {
		p := filepath.Join(dir, "model")
		os.WriteFile(p, []byte(model), 0o644)
		if got := IsPi5(p); got != want {
			t.Errorf("IsPi5(%q) = %v", model, got)
		}
	}
	if IsPi5(filepath.Join(dir, "missing")) {
		t.Error("missing model file is not a Pi 5")
	}
}

func TestExplainCamera(t *testing.T) {
	for line, want := range map[string]string{
		"ERROR: *** no cameras available ***":                                 "no camera found",
		"Failed to acquire camera: Device or resource busy":                   "in use by another program",
		"ERROR: *** libav: unable to open video codec: -22 ***":               "encoder could not be opened",
		"unrecognised option '--low-latency'":                                 "does not know an option",
		"[0:00:00.5] INFO Camera camera_manager.cpp:327 libcamera v0.3.0+rpt": "",
	} {
		got := explainCamera(line)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("explainCamera(%q) = %q, want it to say %q", line, got, want)
		}
	}
}

// recSink records what a source produced.
type recSink struct {
	mu     sync.Mutex
	data   []byte
	idles  int
	aus    int
	inputs int // NewInput calls
}

func (r *recSink) NewInput() { r.mu.Lock(); r.inputs++; r.mu.Unlock() }

func (r *recSink) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data = append(r.data, p...)
	return len(p), nil
}
func (r *recSink) Idle()            { r.mu.Lock(); r.idles++; r.mu.Unlock() }
func (r *recSink) WriteAU([][]byte) { r.mu.Lock(); r.aus++; r.mu.Unlock() }
func (r *recSink) snapshot() (int, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.data), r.idles, r.aus
}

// TestPumpIdle: a pause in the input is reported, so the last access unit
// goes out without waiting for the next one; a steady flow is not cut.
func TestPumpIdle(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	sink := &recSink{}
	done := make(chan error, 1)
	go func() { done <- pump(context.Background(), b, sink) }()
	a.Write([]byte{0, 0, 0, 1, 0x65, 1, 2, 3})
	time.Sleep(50 * time.Millisecond)
	if n, idles, _ := sink.snapshot(); n != 8 || idles != 1 {
		t.Fatalf("after a pause: %d bytes, %d idles; want 8, 1", n, idles)
	}
	a.Close()
	if err := <-done; err != ErrEnded {
		t.Fatalf("pump returned %v, want ErrEnded", err)
	}
}

// TestExecStopsProcessGroup: cancelling an exec source stops the whole
// pipeline it started, promptly.
func TestExecStopsProcessGroup(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	marker := filepath.Join(t.TempDir(), "alive")
	e := &Exec{Command: "sleep 30 | cat; touch " + marker, Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, &recSink{}) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exec source did not stop")
	}
	if d := time.Since(start); d > stopGrace+time.Second {
		t.Errorf("stop took %v", d)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the shell went on after SIGINT to its group")
	}
}

// TestTCPListenOnePublisher: one publisher at a time; a second is refused
// with a message; after the first leaves, the next one is served.
func TestTCPListenOnePublisher(t *testing.T) {
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	addrc := make(chan net.Addr, 1)
	src := &TCPListen{Addr: "127.0.0.1:0", Log: log, ready: func(a net.Addr) { addrc <- a }}
	sink := &recSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	addr := (<-addrc).String()
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	first.Write([]byte("abc"))
	time.Sleep(50 * time.Millisecond)
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(second)
	if !strings.Contains(string(msg), "already connected") {
		t.Errorf("second publisher got %q", msg)
	}
	first.Close()
	time.Sleep(50 * time.Millisecond)
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	third.Write([]byte("def"))
	time.Sleep(50 * time.Millisecond)
	third.Close()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v", err)
	}
	if n, _, _ := sink.snapshot(); n != 6 {
		t.Errorf("got %d bytes, want 6", n)
	}
	// A publisher hanging up is the normal end: a reason, not an error.
	if out := logs.String(); !strings.Contains(out, `msg="publisher disconnected"`) ||
		!strings.Contains(out, `reason="publisher closed the connection"`) || strings.Contains(out, "input ended") {
		t.Errorf("publisher's end not in words:\n%s", out)
	}
}

func TestPublishOnePublisher(t *testing.T) {
	p := &Publish{}
	sink := &recSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, sink) }()
	time.Sleep(20 * time.Millisecond)
	s, release, err := p.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Attach(); err != ErrBusy {
		t.Fatalf("second publisher: %v", err)
	}
	s.WriteAU([][]byte{{0x65}})
	release()
	release()
	if _, r2, err := p.Attach(); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		r2()
	}
	cancel()
	<-done
	if _, _, aus := sink.snapshot(); aus != 1 {
		t.Fatalf("aus %d", aus)
	}
	// Each publisher that leaves ends an input: the next one's stream is
	// parsed from scratch (its first unit must be its own keyframe).
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.inputs != 2 {
		t.Errorf("NewInput called %d times for 2 publishers leaving", sink.inputs)
	}
}

// TestExecExitInWords: a command that cannot run, or fails, is reported
// with what the shell or the command said, not as "/bin/sh exited with
// exit status 127" (the line a person needs was only in the INFO log).
func TestExecExitInWords(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	script := filepath.Join(dir, "notexec.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ command, want string }{
		{"nosuchcmd-camfeed --x", "command not found: nosuchcmd-camfeed"},
		{script, "permission denied: " + script},
		{"echo first >&2; echo 'Invalid data found when processing input' >&2; exit 1", "command exited with exit status 1: Invalid data found when processing input"},
		{"exit 3", "command exited with exit status 3"},
	} {
		// Ten times: the last line was lost about one time in seven when
		// Wait closed the stderr pipe before it was read.
		for range 10 {
			err := (&Exec{Command: tc.command, Log: log}).Run(context.Background(), &recSink{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want %q", tc.command, err, tc.want)
				break
			}
		}
	}
}

func TestShellSubject(t *testing.T) {
	for line, want := range map[string]string{
		"/bin/sh: 1: nosuchcmd: not found":               "nosuchcmd",
		"sh: line 1: nosuchcmd: command not found":       "nosuchcmd",
		"/bin/sh: 1: ./x.sh: Permission denied":          "./x.sh",
		"ffmpeg version 6.1 Copyright (c) 2000-2023 the": "",
	} {
		if got := shellSubject(line); got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
}

// TestStdinStopsOnCancel: a stdin source whose writer never writes (nor
// closes) stops when its context ends; a blocking read of standard input
// held shutdown for as long as the writer lived. The descriptor is left
// in blocking mode, as the shell that shares a terminal expects.
func TestStdinStopsOnCancel(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	fd := int(r.Fd()) // Fd puts r in blocking mode, as standard input usually is
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Stdin{Log: slog.New(slog.DiscardHandler), fd: fd}.Run(ctx, &recSink{}) }()
	if _, err := w.Write([]byte{0, 0, 0, 1, 0x09, 0xf0}); err != nil { // an access unit delimiter, then silence
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let Run reach its read; the cancel must work either way
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(testsupport.Patience):
		t.Fatal("stdin source still reading after its context ended")
	}
	if isNonblock(fd) {
		t.Error("standard input left in non-blocking mode")
	}
}

// TestStderrRepeatsQuiet: a command retried with backoff that says the
// same thing each time has it logged at info level once; what changes
// still shows.
func TestStderrRepeatsQuiet(t *testing.T) {
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil)) // info and up, as in the journal
	marker := filepath.Join(t.TempDir(), "ran")
	e := &Exec{Command: "echo 'cannot open /dev/video9' >&2; [ -e " + marker + " ] && echo 'now something else' >&2; touch " + marker + "; exit 1", Log: log}
	for range 3 {
		if err := e.Run(context.Background(), &recSink{}); err == nil {
			t.Fatal("the command failed, Run did not")
		}
	}
	out := logs.String()
	if n := strings.Count(out, "cannot open /dev/video9"); n != 1 {
		t.Errorf("the repeated line logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "now something else"); n != 1 {
		t.Errorf("the new line logged %d times, want once:\n%s", n, out)
	}
}
