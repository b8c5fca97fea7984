//go:build !linux && !darwin && !freebsd

package record

import "errors"

// diskFree is unknown here: recording is bounded by MaxBytes alone.
func diskFree(string) (int64, error) { return 0, errors.New("free space unknown on this platform") }
