package cameras

import (
	"os"
	"strings"
)

// ModelPath is where the Linux device tree names the board.
const ModelPath = "/proc/device-tree/model"

// PiModel returns the board name, e.g. "Raspberry Pi 4 Model B Rev 1.4",
// from the device tree file at path (ModelPath; tests pass their own), or
// "" when there is none (not a Pi, or not ARM).
func PiModel(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

// HasHardwareH264 reports whether the board has the VideoCore H.264
// encoder that rpicam-vid uses by default. Every Raspberry Pi up to the 4
// (and 400, CM4, Zero 2 W) has it; the Pi 5 family (5, 500, CM5) has none,
// so rpicam-vid must be given --codec libav to encode in software, which
// costs about one Cortex-A76 core for 1080p30. Other boards: false.
func HasHardwareH264(model string) bool {
	rest, ok := strings.CutPrefix(model, "Raspberry Pi ")
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "Compute Module ")
	return !strings.HasPrefix(rest, "5")
}
