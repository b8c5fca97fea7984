package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Source kinds.
const (
	SourceAuto      = "auto"       // rpicam when rpicam-vid or libcamera-vid is on PATH, else test
	SourceRPiCam    = "rpicam"     // rpicam-vid (or libcamera-vid) as a child process
	SourceTest      = "test"       // the built-in test pattern
	SourceExec      = "exec"       // exec:COMMAND writing Annex-B H.264 to stdout
	SourceFile      = "file"       // file:PATH, paced and looped; a FIFO is read live
	SourceStdin     = "stdin"      // Annex-B on standard input
	SourceTCP       = "tcp"        // tcp://HOST:PORT, connect to a publisher
	SourceTCPListen = "tcp-listen" // tcp-listen://ADDR, accept one publisher at a time
	SourceRTSP      = "rtsp"       // rtsp:// or rtsps:// URL of a camera or server
	SourcePublish   = "publish"    // accept one RTSP publisher (ANNOUNCE/RECORD)
)

// Source is a parsed source spec.
type Source struct {
	Kind string
	Arg  string // command, path, address or URL; empty for auto, rpicam, test, stdin, publish
}

// ParseSource parses a --source spec: auto, rpicam, test, stdin, publish,
// exec:COMMAND, file:PATH, tcp://HOST:PORT, tcp-listen://ADDR,
// rtsp://[user:pass@]host[:port]/path (or rtsps://).
func ParseSource(spec string) (Source, error) {
	spec = strings.TrimSpace(spec)
	switch spec {
	case "", SourceAuto:
		return Source{Kind: SourceAuto}, nil
	case SourceRPiCam, SourceTest, SourceStdin, SourcePublish:
		return Source{Kind: spec}, nil
	}
	if cmd, ok := strings.CutPrefix(spec, "exec:"); ok {
		if strings.TrimSpace(cmd) == "" {
			return Source{}, errors.New("exec: needs a command, as in exec:ffmpeg -i ... -f h264 -")
		}
		return Source{Kind: SourceExec, Arg: cmd}, nil
	}
	if path, ok := strings.CutPrefix(spec, "file:"); ok {
		if path == "" {
			return Source{}, errors.New("file: needs a path, as in file:/home/pi/clip.h264")
		}
		return Source{Kind: SourceFile, Arg: path}, nil
	}
	if addr, ok := strings.CutPrefix(spec, "tcp-listen://"); ok {
		if err := checkAddr(addr); err != nil {
			return Source{}, fmt.Errorf("tcp-listen: %w", err)
		}
		return Source{Kind: SourceTCPListen, Arg: addr}, nil
	}
	if addr, ok := strings.CutPrefix(spec, "tcp://"); ok {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return Source{}, fmt.Errorf("tcp: %q is not HOST:PORT", addr)
		}
		return Source{Kind: SourceTCP, Arg: addr}, nil
	}
	if strings.HasPrefix(spec, "rtsp://") || strings.HasPrefix(spec, "rtsps://") {
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return Source{}, fmt.Errorf("rtsp: %q is not a URL such as rtsp://user:pass@192.168.1.20:554/stream1", spec)
		}
		return Source{Kind: SourceRTSP, Arg: spec}, nil
	}
	return Source{}, fmt.Errorf("%q is not a source; use auto, rpicam, test, stdin, publish, exec:COMMAND, file:PATH, tcp://HOST:PORT, tcp-listen://ADDR or rtsp://URL", spec)
}
