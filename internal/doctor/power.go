package doctor

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/camfeed/camfeed/internal/pihealth"
)

// Temperatures of the Pi's SoC: the firmware throttles from 80 °C (85 °C
// is the hard limit); from 70 °C there is little margin left.
const (
	tempFault   = 80.0
	tempWarning = 70.0
)

const (
	supplyFix = "use a stronger power supply and a short, thick cable: the official 5.1 V 5 A supply for a Pi 5, 5.1 V 3 A for a Pi 4, " +
		"5.1 V 2.5 A for a Pi 3 or Zero 2 W; a weak supply drops frames and can corrupt the SD card"
	coolingFix = "cool the Pi: a heatsink or a fan (the Active Cooler on a Pi 5), air around the case, out of the sun"
)

// checkPower decodes `vcgencmd get_throttled` bit by bit: under-voltage
// or throttling now is a fault, a capped frequency or the soft temperature
// limit now, or anything since boot, a warning.
func checkPower(ctx context.Context, m *machine) Result {
	vcg, err := m.look("vcgencmd")
	if err != nil {
		if m.isPi() {
			return Result{Level: Warning, Detail: "vcgencmd not found: under-voltage and throttling cannot be checked",
				Fix: "sudo apt install raspi-utils (libraspberrypi-bin on older releases)"}
		}
		return Result{Level: OK, Detail: "no vcgencmd (not a Raspberry Pi): nothing to check"}
	}
	out, err := m.run(ctx, vcg, "get_throttled")
	t, perr := pihealth.ParseThrottled(string(out))
	if err != nil || perr != nil {
		why := strings.TrimSpace(string(out))
		if why == "" && err != nil {
			why = err.Error()
		}
		return Result{Level: Warning, Detail: "vcgencmd get_throttled failed: " + firstLine(why),
			Fix: "run camfeed doctor as root, or as a user in group video (vcgencmd needs /dev/vcio)"}
	}
	var now, boot []string
	level, underVoltage, hot := OK, false, false
	for _, f := range pihealth.Flags() {
		words, _, _ := strings.Cut(f.Fault, ":")
		if t.Now(f) {
			now = append(now, words)
			if f.Name == "under_voltage" || f.Name == "throttled" {
				level = Fault
			} else if level == OK {
				level = Warning
			}
		} else if t.SinceBoot(f) {
			boot = append(boot, words)
			if level == OK {
				level = Warning
			}
		}
		if t.SinceBoot(f) || t.Now(f) {
			underVoltage = underVoltage || f.Name == "under_voltage"
			hot = hot || f.Name != "under_voltage"
		}
	}
	raw := fmt.Sprintf("throttled=0x%x", uint32(t))
	if level == OK {
		return Result{Level: OK, Detail: "no under-voltage or throttling since boot (" + raw + ")"}
	}
	var parts []string
	if len(now) > 0 {
		parts = append(parts, "now: "+strings.Join(now, ", "))
	}
	if len(boot) > 0 {
		parts = append(parts, "since boot (not now): "+strings.Join(boot, ", "))
	}
	detail := strings.Join(parts, "; ") + " (" + raw + "); frames drop while it lasts"
	var fixes []string
	if underVoltage {
		fixes = append(fixes, supplyFix)
	}
	if hot {
		fixes = append(fixes, coolingFix+" (throttling also follows under-voltage)")
	}
	return Result{Level: level, Detail: detail, Fix: strings.Join(fixes, "; ")}
}

// checkTemperature reads the SoC temperature from the thermal zone, or
// from vcgencmd measure_temp.
func checkTemperature(ctx context.Context, m *machine) Result {
	c, src, ok := 0.0, "", false
	if b, err := os.ReadFile(m.path(pihealth.DefaultThermalZone)); err == nil {
		if v, err := pihealth.ParseThermalZone(string(b)); err == nil {
			c, src, ok = v, "thermal_zone0", true
		}
	}
	if vcg, err := m.look("vcgencmd"); !ok && err == nil {
		if out, err := m.run(ctx, vcg, "measure_temp"); err == nil {
			if v, err := pihealth.ParseMeasureTemp(string(out)); err == nil {
				c, src, ok = v, "vcgencmd measure_temp", true
			}
		}
	}
	if !ok {
		return Result{Level: OK, Detail: "no thermal zone or vcgencmd: nothing to check"}
	}
	detail := fmt.Sprintf("SoC at %.1f °C (%s)", c, src)
	switch {
	case c >= tempFault:
		return Result{Level: Fault, Detail: detail + fmt.Sprintf(": the Pi throttles from %.0f °C and frames drop", tempFault), Fix: coolingFix}
	case c >= tempWarning:
		return Result{Level: Warning, Detail: detail + fmt.Sprintf(": close to %.0f °C, where the Pi throttles", tempFault), Fix: coolingFix}
	}
	return Result{Level: OK, Detail: detail}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
