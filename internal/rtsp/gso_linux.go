package rtsp

import (
	"encoding/binary"
	"errors"
	"syscall"
	"unsafe"
)

// UDP generic segmentation offload (Linux 4.18+, udp(7) UDP_SEGMENT): one
// sendmmsg(2) message carries a run of equal-sized datagrams, and the
// kernel (or the network card) cuts it. The IP and UDP work is then done
// once per run instead of once per packet, which is most of what a UDP
// viewer costs: an access unit's FU-A packets are all maxPayload long but
// the last.
const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT
	// gsoMaxSegments is the kernel's UDP_MAX_SEGMENTS of Linux 4.18 (later
	// kernels allow 128), gsoMaxBytes keeps a run within one IP datagram.
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
)

// gsoControl returns the UDP_SEGMENT control message for size-byte
// segments, in oob's storage when it is the right one already.
func gsoControl(oob []byte, size int) []byte {
	hdr := int(unsafe.Sizeof(syscall.Cmsghdr{}))
	space := syscall.CmsgSpace(2)
	if len(oob) == space && int(binary.NativeEndian.Uint16(oob[hdr:])) == size {
		return oob
	}
	oob = make([]byte, space)
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = solUDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[hdr:], uint16(size))
	return oob
}

// gsoRefused reports whether a send failed because the kernel or the
// route cannot segment (an old kernel: EINVAL or ENOPROTOOPT; a device
// without checksum offload: EIO), so the socket should stop asking.
func gsoRefused(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOPROTOOPT)
}

// gsoAvailable is whether this platform can try GSO at all.
const gsoAvailable = true
