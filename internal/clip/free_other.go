//go:build !linux && !darwin && !freebsd

package clip

import "errors"

// diskFree is unknown here: saving is not limited by free space.
func diskFree(string) (int64, error) { return 0, errors.New("free space unknown on this platform") }
