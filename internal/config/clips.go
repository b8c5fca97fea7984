package config

import (
	"fmt"
	"time"
)

// ClipLimits are the clip keys beyond clips_dir and clips_max_saved
// (internal/clip, docs/CLIPS.md, docs/SECURITY.md): clip downloads at
// once over all feeds, per feed and per user (or address, when
// anonymous); saves at once, in slots of their own so that downloads
// never block one; and how long a saved clip is safe from being pushed
// out by newer ones (0: not at all).
type ClipLimits struct {
	ClipsKeepFor       time.Duration `yaml:"clips_keep_for"`
	ClipsMaxConcurrent int           `yaml:"clips_max_concurrent"`
	ClipsMaxPerFeed    int           `yaml:"clips_max_per_feed"`
	ClipsMaxPerUser    int           `yaml:"clips_max_per_user"`
	ClipsMaxSaving     int           `yaml:"clips_max_saving"`
	ClipsMaxAfter      time.Duration `yaml:"clips_max_after"`
	ClipsMinFree       Size          `yaml:"clips_min_free"`
}

// DefaultClipLimits are the compiled-in clip limits.
func DefaultClipLimits() ClipLimits {
	return ClipLimits{
		ClipsKeepFor:       time.Minute,
		ClipsMaxConcurrent: 16,
		ClipsMaxPerFeed:    8,
		ClipsMaxPerUser:    4,
		ClipsMaxSaving:     8,
		ClipsMaxAfter:      time.Minute,
		ClipsMinFree:       Size{Bytes: 256 << 20},
	}
}

// validate checks the clip keys, and clips_max_saved with them.
func (c ClipLimits) validate(maxSaved int) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, n := range []struct {
		key string
		v   int
	}{{"clips_max_saved", maxSaved}, {"clips_max_concurrent", c.ClipsMaxConcurrent}, {"clips_max_per_feed", c.ClipsMaxPerFeed},
		{"clips_max_per_user", c.ClipsMaxPerUser}, {"clips_max_saving", c.ClipsMaxSaving}} {
		if n.v < 1 || n.v > 10000 {
			bad("%s: %d must be between 1 and 10000", n.key, n.v)
		}
	}
	if c.ClipsKeepFor < 0 || c.ClipsKeepFor > 24*time.Hour {
		bad("clips_keep_for: %s must be between 0 (off) and 24h", c.ClipsKeepFor)
	}
	if c.ClipsMaxAfter < time.Second || c.ClipsMaxAfter > 10*time.Minute {
		bad("clips_max_after: %s must be between 1s and 10m", c.ClipsMaxAfter)
	}
	if c.ClipsMinFree.Duration != 0 || c.ClipsMinFree.Bytes < 0 {
		bad("clips_min_free: %s is not a number of bytes such as 256MiB", c.ClipsMinFree)
	}
	return errs
}
