package api

import (
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/pihealth"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestStatusPi: the Pi's health is in the status where there is a reading,
// and "pi" is left out where there is none (not a Pi).
func TestStatusPi(t *testing.T) {
	c, th := 48.5, pihealth.Throttled(0x10000)
	for _, tc := range []struct {
		name string
		pi   func() *pihealth.Reading
		want string // "" means no "pi" key at all
	}{
		{"not set", nil, ""},
		{"no reading", func() *pihealth.Reading { return nil }, ""},
		{"a reading", func() *pihealth.Reading { return &pihealth.Reading{TemperatureC: &c, Throttled: &th} },
			`"soc_temperature_celsius": 48.5,
    "throttled": {
      "raw": "0x10000",
      "now": [],
      "since_boot": [
        "under_voltage"
      ]
    }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := testsupport.Serve(t, (&Handlers{Feeds: feeds{}, Pi: tc.pi}).Register)
			_, _, body := get(t, base+"/api/v1/status")
			if has := strings.Contains(body, `"pi"`); has != (tc.want != "") || !strings.Contains(body, tc.want) {
				t.Errorf("status:\n%s\nwant %q", body, tc.want)
			}
		})
	}
}
