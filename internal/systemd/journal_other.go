//go:build !linux

package systemd

import "os"

// devIno: journald is Linux only.
func devIno(*os.File) (dev, ino uint64, ok bool) { return 0, 0, false }
