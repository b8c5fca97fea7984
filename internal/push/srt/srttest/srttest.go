// Package srttest runs srt-live-transmit (Debian: srt-tools) as an SRT
// listener on loopback for tests, writing what it receives to a file.
package srttest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Receiver is srt-live-transmit listening on loopback, writing what it
// receives (MPEG-TS) to Out.
type Receiver struct {
	Port  int
	Out   string
	Log   *testsupport.LogBuffer
	stats string // srt-live-transmit's statistics, a JSON line per packet

	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs srt-live-transmit on a free port as a one-shot listener
// (it exits when the caller leaves) with the given extra URL options
// ("&passphrase=..."), and waits until it listens.
func Start(t testing.TB, opts string) *Receiver {
	t.Helper()
	return StartOn(t, FreeUDPPort(t), opts)
}

// StartOn is Start on a given port (a receiver that comes back where a
// push expects it).
func StartOn(t testing.TB, port int, opts string) *Receiver {
	t.Helper()
	bin := testsupport.NeedTool(t, "srt-live-transmit")
	dir := t.TempDir()
	r := &Receiver{Port: port, Out: filepath.Join(dir, "out.ts"), stats: filepath.Join(dir, "stats.json"), done: make(chan struct{}), Log: &testsupport.LogBuffer{}}
	f, err := os.Create(r.Out)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("srt://127.0.0.1:%d?mode=listener%s", r.Port, opts)
	// Statistics after every packet: each line counts that interval only,
	// and a coarser interval would miss the last packets.
	r.cmd = exec.Command(bin, "-v", "-a:no", "-s:1", "-pf:json", "-statsout:"+r.stats, src, "file://con")
	r.cmd.Stdout, r.cmd.Stderr = f, r.Log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		f.Close()
		close(r.done)
	}()
	t.Cleanup(r.Kill)
	testsupport.Eventually(t, "srt-live-transmit listening", func() bool {
		return strings.Contains(r.Log.String(), "listen...")
	})
	// It says so just before srt_listen, and gosrt sends its handshake
	// once, never again: one that comes too early would go unanswered.
	time.Sleep(100 * time.Millisecond)
	return r
}

// URL is srt://127.0.0.1:port followed by query ("?streamid=...").
func (r *Receiver) URL(query string) *url.URL {
	u, err := url.Parse(r.Addr() + query)
	if err != nil {
		panic(err)
	}
	return u
}

// Addr is srt://127.0.0.1:port.
func (r *Receiver) Addr() string { return fmt.Sprintf("srt://127.0.0.1:%d", r.Port) }

// Dropped is how many packets the receiver gave up on because they came
// (or were resent) too late for its latency window: SRT's own loss, which
// no sender can undo. It reads the statistics written so far.
func (r *Receiver) Dropped(t testing.TB) int {
	t.Helper()
	data, err := os.ReadFile(r.stats)
	if err != nil {
		t.Fatalf("srt-live-transmit's statistics: %v", err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		var s struct {
			Recv struct {
				PacketsDropped int `json:"packetsDropped"`
			} `json:"recv"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			continue // a line cut short by a kill
		}
		n += s.Recv.PacketsDropped
	}
	return n
}

// Kill ends the receiver at once, as a crash would (no SRT shutdown),
// and waits for it.
func (r *Receiver) Kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// Freeze stops the receiver without ending it, as a host that drops off
// the network would be: nothing answers at all.
func (r *Receiver) Freeze() { _ = r.cmd.Process.Signal(syscall.SIGSTOP) }

// Wait waits for the receiver to exit by itself (the caller left, and
// said so), or ends it after testsupport.Patience: the shutdown is one
// UDP packet, and libsrt otherwise waits out its own idle timeout.
func (r *Receiver) Wait(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(testsupport.Patience):
		t.Logf("srt-live-transmit still running after the push closed; ending it")
		r.Kill()
	}
}
