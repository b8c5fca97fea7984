//go:build !linux

package source

import "io"

// growPipe does nothing outside Linux, which has no F_SETPIPE_SZ.
func growPipe(io.Reader) {}

// queued is nil outside Linux: pauses are found with read deadlines.
func queued(io.Reader) func() (int, bool) { return nil }
