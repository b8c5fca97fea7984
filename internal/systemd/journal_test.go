//go:build linux

package systemd

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

func TestJournalStream(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("journald is Linux only")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	same := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	other := fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)
	for env, want := range map[string]bool{same: true, other: false, "": false, "x:y": false} {
		if got := journalStream(env, f); got != want {
			t.Errorf("JOURNAL_STREAM=%q: %v, want %v", env, got, want)
		}
	}
}
