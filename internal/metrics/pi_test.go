package metrics

import (
	"sync/atomic"
	"testing"

	"github.com/camfeed/camfeed/internal/pihealth"
)

func TestPiHealth(t *testing.T) {
	var latest atomic.Pointer[pihealth.Reading]
	m := New(nil, "test")
	m.CollectPi(latest.Load)

	// Before the first reading: nothing.
	fams := scrape(t, m.Handler())
	if fams["camfeed_soc_temperature_celsius"] != nil || fams["camfeed_throttled"] != nil {
		t.Fatal("Pi metrics before the first reading")
	}

	c, th := 61.5, pihealth.Throttled(0x50001)
	latest.Store(&pihealth.Reading{TemperatureC: &c, Throttled: &th})
	fams = scrape(t, m.Handler())
	if v, ok := value(t, fams, "camfeed_soc_temperature_celsius", nil); !ok || v != 61.5 {
		t.Errorf("temperature %v %v", v, ok)
	}
	for _, tc := range []struct {
		flag, when string
		want       float64
	}{
		{"under_voltage", "now", 1}, {"under_voltage", "since_boot", 1},
		{"throttled", "now", 0}, {"throttled", "since_boot", 1},
		{"arm_freq_capped", "now", 0}, {"soft_temp_limit", "since_boot", 0},
	} {
		if v, ok := value(t, fams, "camfeed_throttled", map[string]string{"flag": tc.flag, "when": tc.when}); !ok || v != tc.want {
			t.Errorf("%s %s: %v %v, want %v", tc.flag, tc.when, v, ok, tc.want)
		}
	}

	// A thermal zone but no vcgencmd: the temperature only.
	latest.Store(&pihealth.Reading{TemperatureC: &c})
	fams = scrape(t, m.Handler())
	if fams["camfeed_throttled"] != nil || fams["camfeed_soc_temperature_celsius"] == nil {
		t.Error("throttled without vcgencmd, or no temperature")
	}
}
