// Package pihealth reads a Raspberry Pi's health: the SoC temperature and
// the firmware's under-voltage and throttling flags (`vcgencmd
// get_throttled`). A Monitor polls them while camfeed runs, so that
// /api/v1/status and /metrics carry them and a change is logged once, in
// words; `camfeed doctor` decodes the same flags. Where neither vcgencmd
// nor a thermal zone exists (not a Pi), there is nothing to read and
// nothing is shown.
package pihealth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrFormat is returned for vcgencmd output that is not what it prints.
var ErrFormat = errors.New("unexpected vcgencmd output")

// Flag is one condition the firmware reports in get_throttled. The low
// four bits hold it now; the same bit shifted by SinceBootShift is set once
// it happened since boot (Raspberry Pi documentation, "vcgencmd",
// get_throttled).
type Flag struct {
	Bit  uint   // the "now" bit
	Name string // a metric label: under_voltage, ...
	// Fault is what it means, for a log line or a doctor check.
	Fault string
	// Cleared is logged when the condition ends.
	Cleared string
}

// SinceBootShift moves a "now" bit to its "since boot" bit.
const SinceBootShift = 16

// Flags returns the four conditions, in bit order.
func Flags() [4]Flag {
	return [4]Flag{
		{0, "under_voltage", "under-voltage: the power supply is too weak; frames will drop",
			"under-voltage cleared: the supply voltage is back to normal"},
		{1, "arm_freq_capped", "ARM frequency capped: the SoC is hot or the supply weak; the CPU runs slower and encoding may fall behind",
			"ARM frequency no longer capped"},
		{2, "throttled", "throttled: the SoC slowed down (heat or under-voltage); frames will drop",
			"throttling ended: the SoC runs at full speed again"},
		{3, "soft_temp_limit", "soft temperature limit reached: the SoC slows down to cool; frames may drop",
			"below the soft temperature limit again"},
	}
}

// Throttled is get_throttled's value.
type Throttled uint32

// Now reports whether f holds now.
func (t Throttled) Now(f Flag) bool { return t&(1<<f.Bit) != 0 }

// SinceBoot reports whether f happened since boot (now included).
func (t Throttled) SinceBoot(f Flag) bool { return t&(1<<(f.Bit+SinceBootShift)) != 0 }

// ParseThrottled parses `vcgencmd get_throttled` output: "throttled=0x50005".
func ParseThrottled(out string) (Throttled, error) {
	s, ok := strings.CutPrefix(strings.TrimSpace(out), "throttled=")
	if !ok {
		return 0, fmt.Errorf("%w: %q (want throttled=0x...)", ErrFormat, firstLine(out))
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q (want throttled=0x...)", ErrFormat, firstLine(out))
	}
	return Throttled(v), nil
}

// ParseMeasureTemp parses `vcgencmd measure_temp` output: "temp=48.3'C".
func ParseMeasureTemp(out string) (float64, error) {
	s, ok := strings.CutPrefix(strings.TrimSpace(out), "temp=")
	if !ok {
		return 0, fmt.Errorf("%w: %q (want temp=NN.N'C)", ErrFormat, firstLine(out))
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "C"), "'")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= -100 && v <= 200) { // NaN too
		return 0, fmt.Errorf("%w: %q (want temp=NN.N'C)", ErrFormat, firstLine(out))
	}
	return v, nil
}

// ParseThermalZone parses a sysfs thermal zone's temp file: millidegrees
// Celsius, "48312".
func ParseThermalZone(text string) (float64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil || v < -100_000 || v > 200_000 {
		return 0, fmt.Errorf("thermal zone: %q is not a temperature in millidegrees", firstLine(text))
	}
	return float64(v) / 1000, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
