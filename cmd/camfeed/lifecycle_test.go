package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestHelperCamfeed is not a test: it is camfeed, run by the tests below
// in a child process of the test binary (the os/exec tests' pattern), with
// the arguments in CAMFEED_HELPER_ARGS.
func TestHelperCamfeed(t *testing.T) {
	args := os.Getenv("CAMFEED_HELPER_ARGS")
	if args == "" {
		t.Skip("run as a child by the lifecycle tests")
	}
	os.Exit(run(strings.Fields(args), nil, os.Stdout, os.Stderr))
}

// TestSIGTERMWithSilentStdin: camfeed --source stdin whose writer is alive
// but silent stops promptly on SIGTERM. With testsrc | camfeed it stopped
// only when the writer was killed, 66 s later.
func TestSIGTERMWithSilentStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close() // the writer never writes, and stays until the end
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCamfeed$")
	cmd.Env = append(os.Environ(), "CAMFEED_HELPER_ARGS=--source stdin --http 127.0.0.1:0 --rtsp off --webrtc off")
	cmd.Stdin = r
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitLine := func(what string) {
		t.Helper()
		deadline := time.After(testsupport.Patience)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("camfeed ended before %q", what)
				}
				if strings.Contains(l, what) {
					return
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("no %q from camfeed", what)
			}
		}
	}
	waitLine("camfeed running")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine("msg=stopped")
	exited := make(chan error, 1)
	go func() {
		for range lines { // drain, so the child never blocks writing its log
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("camfeed exited with %v", err)
		}
	case <-time.After(testsupport.Patience):
		_ = cmd.Process.Kill()
		t.Fatal("camfeed did not exit after SIGTERM while its stdin writer was silent")
	}
}
