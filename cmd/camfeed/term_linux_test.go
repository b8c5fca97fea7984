package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/crypto/bcrypt"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// openPTY opens a pseudo-terminal pair (pty(7)): what the test writes to
// the controller, the program reads from the terminal as typed keys, and
// what the terminal echoes comes back on the controller.
func openPTY(t *testing.T) (controller, tty *os.File) {
	t.Helper()
	c, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	var n uint32
	if err := ioctl(c, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		c.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	if err := ioctl(c, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		c.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return c, s
}

func ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// TestPasswdTerminalNoEcho: on a terminal, camfeed passwd reads the
// password twice with echo off; the terminal shows neither, and the hash
// printed matches it. Echo is on again afterwards.
func TestPasswdTerminalNoEcho(t *testing.T) {
	controller, tty := openPTY(t)
	var out bytes.Buffer
	var errb testsupport.LogBuffer // written by runPasswd while the test reads it
	done := make(chan int, 1)
	go func() { done <- runPasswd(nil, tty, &out, &errb) }()
	// Type each line once its prompt is out and the terminal has echo
	// off: keys typed before would be echoed, as for any program.
	for _, prompt := range []string{"password: ", "password again: "} {
		testsupport.Eventually(t, "prompt "+prompt, func() bool { return strings.Contains(errb.String(), prompt) })
		waitEchoOff(t, tty)
		if _, err := controller.Write([]byte("s3cret-pw\r")); err != nil {
			t.Fatal(err)
		}
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("camfeed passwd did not finish")
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	_ = controller.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	echoed := make([]byte, 4096)
	n, _ := controller.Read(echoed)
	if bytes.Contains(echoed[:n], []byte("s3cret")) {
		t.Errorf("the terminal echoed the password: %q", echoed[:n])
	}
	if !strings.Contains(errb.String(), "password again: ") {
		t.Errorf("prompts: %q", errb.String())
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out.String())), []byte("s3cret-pw")); err != nil {
		t.Errorf("hash %q does not match the password typed: %v", out.String(), err)
	}
	if !echoOn(tty) {
		t.Error("echo not turned back on")
	}
}

// echoOn reports whether the terminal echoes what is typed (termios
// ECHO, in c_lflag).
func echoOn(tty *os.File) bool {
	var tio syscall.Termios
	if err := ioctl(tty, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		return true
	}
	return tio.Lflag&syscall.ECHO != 0
}

func waitEchoOff(t *testing.T, tty *os.File) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for echoOn(tty) {
		if time.Now().After(deadline) {
			t.Fatal("echo was never turned off")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPasswdPiped: a password piped in (a script) is read as one line,
// asked once, with no terminal needed.
func TestPasswdPiped(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runPasswd(nil, strings.NewReader("piped-pw\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out.String())), []byte("piped-pw")); err != nil {
		t.Errorf("hash %q does not match: %v", out.String(), err)
	}
	if code := runPasswd(nil, strings.NewReader("\n"), &out, &errb); code != 2 || !strings.Contains(errb.String(), "empty password") {
		t.Errorf("empty password: exit %d, %q", code, errb.String())
	}
}

// TestTestsrcRefusesTerminal: camfeed testsrc does not write binary video
// to a terminal; it says where to send it instead.
func TestTestsrcRefusesTerminal(t *testing.T) {
	controller, tty := openPTY(t)
	var errb bytes.Buffer
	if code := runTestsrc([]string{"--frames", "1", "--fast"}, tty, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "| ffplay -f h264 -") || !strings.Contains(errb.String(), "> pattern.h264") {
		t.Errorf("no hint: %q", errb.String())
	}
	_ = controller.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	b := make([]byte, 64)
	if n, err := controller.Read(b); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("wrote %d bytes to the terminal (%v)", n, err)
	}
}
