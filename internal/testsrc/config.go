package testsrc

import (
	"errors"
	"fmt"
)

// Defaults used for the zero value of each Config field.
const (
	DefaultWidth  = 640
	DefaultHeight = 480
	DefaultFPS    = 30
	DefaultIntra  = 30
)

// Limits checked by Config.Validate.
const (
	MinWidth, MaxWidth   = 64, 1920
	MinHeight, MaxHeight = 64, 1088
	MaxFPS               = 120
	MaxIntra             = 600
)

// ErrBadConfig is wrapped by every error from Config.Validate and New.
var ErrBadConfig = errors.New("testsrc: bad config")

// Config sets the test pattern's picture size, frame rate and keyframe
// interval. A zero field takes its default (640x480, 30 fps, intra 30).
type Config struct {
	Width, Height int
	FPS           int
	Intra         int // IDR period in frames: 1 makes every frame a keyframe
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.Intra == 0 {
		c.Intra = DefaultIntra
	}
	return c
}

// Validate checks c after defaults are applied. The width must be a whole
// number of macroblocks (16 pixels). The height must be a multiple of 8:
// a height that is not a multiple of 16, like 1080 or 360, is coded as the
// next multiple of 16 and cropped in the SPS (7.4.2.1.1, frame_cropping).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Width < MinWidth || c.Width > MaxWidth:
		return fmt.Errorf("%w: width %d is out of range %d..%d", ErrBadConfig, c.Width, MinWidth, MaxWidth)
	case c.Width%16 != 0:
		return fmt.Errorf("%w: width %d is not a multiple of 16", ErrBadConfig, c.Width)
	case c.Height < MinHeight || c.Height > MaxHeight:
		return fmt.Errorf("%w: height %d is out of range %d..%d", ErrBadConfig, c.Height, MinHeight, MaxHeight)
	case c.Height%8 != 0:
		return fmt.Errorf("%w: height %d is not a multiple of 8", ErrBadConfig, c.Height)
	case c.FPS < 1 || c.FPS > MaxFPS:
		return fmt.Errorf("%w: fps %d is out of range 1..%d", ErrBadConfig, c.FPS, MaxFPS)
	case c.Intra < 1 || c.Intra > MaxIntra:
		return fmt.Errorf("%w: intra %d is out of range 1..%d", ErrBadConfig, c.Intra, MaxIntra)
	}
	return nil
}
