//go:build !linux

package cameras

import "errors"

// deviceFormats needs V4L2, which only Linux has.
func deviceFormats(string) ([]string, error) {
	return nil, errors.New("cameras: V4L2 is Linux only")
}
