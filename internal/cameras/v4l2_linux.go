package cameras

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// v4l2FmtDesc is struct v4l2_fmtdesc from linux/videodev2.h (64 bytes on
// every architecture: only 32-bit fields and a byte array).
type v4l2FmtDesc struct {
	index       uint32
	typ         uint32
	flags       uint32
	description [32]byte
	pixelformat uint32
	mbusCode    uint32
	reserved    [3]uint32
}

const (
	// vidiocEnumFmt is VIDIOC_ENUM_FMT, _IOWR('V', 2, struct v4l2_fmtdesc).
	vidiocEnumFmt       = 0xc0405602
	v4l2BufTypeCapture  = 1
	maxFormatsPerDevice = 64
)

// deviceFormats lists a V4L2 device's capture pixel formats with
// VIDIOC_ENUM_FMT: no cgo, and it works while another process streams
// from the camera, since it does not take the device.
func deviceFormats(dev string) ([]string, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var out []string
	var ioErr error
	err = sc.Control(func(fd uintptr) {
		for i := uint32(0); i < maxFormatsPerDevice; i++ {
			d := v4l2FmtDesc{index: i, typ: v4l2BufTypeCapture}
			_, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, vidiocEnumFmt, uintptr(unsafe.Pointer(&d)))
			if e == syscall.EINVAL {
				return // end of the list
			}
			if e != 0 {
				ioErr = e
				return
			}
			out = append(out, fourCC(d.pixelformat))
		}
	})
	return out, errors.Join(err, ioErr)
}
