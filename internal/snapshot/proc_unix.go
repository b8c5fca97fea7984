//go:build unix

package snapshot

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts ffmpeg in its own process group, so a Ctrl-C meant
// for the server is not also delivered to it, and kills the whole group
// when the decode times out.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
