package app

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/source"
)

// piModelFile is where the kernel names the board.
const piModelFile = "/proc/device-tree/model"

func parserConfig() h264.ParserConfig {
	// Every access unit is stamped with its ingest time, for the
	// browser's latency overlay and for measurements.
	return h264.ParserConfig{StampIngest: true}
}

// newSource builds a feed's source from its spec, with cfg's settings (the
// config being started or reloaded).
func (a *App) newSource(cfg *config.Config, name string, fc config.Feed) (source.Source, error) {
	spec, err := config.ParseSource(fc.Source)
	if err != nil {
		return nil, err
	}
	log := a.log.With("feed", name)
	switch spec.Kind {
	case config.SourceAuto:
		if _, err := source.FindCameraTool(); err != nil {
			log.Info("no camera tool found (rpicam-vid or libcamera-vid); serving the built-in test pattern")
			return testSource(fc)
		}
		return a.rpicam(name, fc, log), nil
	case config.SourceRPiCam:
		return a.rpicam(name, fc, log), nil
	case config.SourceTest:
		return testSource(fc)
	case config.SourceExec:
		return &source.Exec{Command: spec.Arg, Log: log}, nil
	case config.SourceFile:
		return &source.File{Path: spec.Arg, FPS: fc.Framerate, Log: log}, nil
	case config.SourceStdin:
		return source.Stdin{Log: log}, nil
	case config.SourceTCP:
		return &source.TCP{Addr: spec.Arg, Log: log}, nil
	case config.SourceTCPListen:
		// A bare TCP stream has no credentials: tcp_allow decides.
		allow := func(r net.Addr) bool { return a.authz.Load().AllowTCPPublish(r, name) }
		return &source.TCPListen{Addr: spec.Arg, Log: log, Allow: allow, Timeout: cfg.PublishTimeout}, nil
	case config.SourceRTSP:
		return source.NewRTSP(spec.Arg, log), nil
	case config.SourcePublish:
		return &source.Publish{}, nil
	}
	return nil, fmt.Errorf("source %q is not available in this build", spec.Kind)
}

func (a *App) rpicam(name string, fc config.Feed, log *slog.Logger) source.Source {
	sw := source.IsPi5(piModelFile)
	if sw {
		log.Info("Raspberry Pi 5 has no hardware H.264 encoder; using the libav software encoder with low-latency settings")
	}
	return &source.RPiCam{
		Camera: fc.Camera, Mode: fc.Mode, Width: fc.Width, Height: fc.Height, Framerate: fc.Framerate,
		Bitrate: fc.Bitrate, Intra: fc.Intra, Profile: fc.Profile, Level: fc.Level,
		HFlip: fc.HFlip, VFlip: fc.VFlip, Rotation: fc.Rotation, ExtraArgs: fc.ExtraArgs,
		Software: sw, Log: log, Drops: a.camDrops[name],
	}
}

// testSource is the built-in test pattern, refused at start when it
// cannot make the picture asked for (else it would restart forever).
func testSource(fc config.Feed) (source.Source, error) {
	c := fc.TestPattern()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("the test pattern (no camera found): %w", err)
	}
	return &source.Test{Config: c}, nil
}
