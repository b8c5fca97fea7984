package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Size is a RAM budget: either bytes ("8MiB", "500KB", "1048576") or a
// duration of video ("30s"), which the feed turns into bytes from its
// bitrate.
type Size struct {
	Bytes    int
	Duration time.Duration
}

// IsZero reports an unset Size.
func (s Size) IsZero() bool { return s.Bytes == 0 && s.Duration == 0 }

func (s Size) String() string {
	switch {
	case s.Duration != 0:
		return s.Duration.String()
	case s.Bytes%(1<<30) == 0 && s.Bytes != 0:
		return fmt.Sprintf("%dGiB", s.Bytes>>30)
	case s.Bytes%(1<<20) == 0 && s.Bytes != 0:
		return fmt.Sprintf("%dMiB", s.Bytes>>20)
	case s.Bytes%(1<<10) == 0 && s.Bytes != 0:
		return fmt.Sprintf("%dKiB", s.Bytes>>10)
	}
	return strconv.Itoa(s.Bytes)
}

var sizeUnits = []struct {
	suffix string
	mult   int
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}

// ParseSize parses a Size.
func ParseSize(v string) (Size, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Size{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return Size{Duration: d}, nil
	}
	mult := 1
	num := v
	for _, u := range sizeUnits {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<40 {
		return Size{}, fmt.Errorf("%q is not a size such as 8MiB or a duration such as 30s", v)
	}
	return Size{Bytes: int(n * float64(mult))}, nil
}

// UnmarshalYAML accepts a number of bytes or a string for ParseSize.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the form ParseSize reads.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }
