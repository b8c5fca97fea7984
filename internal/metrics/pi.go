package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/camfeed/camfeed/internal/pihealth"
)

// CollectPi adds the Raspberry Pi's health from read (a pihealth
// Monitor's Latest): camfeed_soc_temperature_celsius, and
// camfeed_throttled{flag, when} at 1 for each get_throttled flag set now
// or since boot, 0 otherwise. What a reading lacks is left out, and
// everything before the first reading; the app calls this only where
// there is something to read.
func (m *Metrics) CollectPi(read func() *pihealth.Reading) {
	m.reg.MustRegister(&piCollector{
		read: read,
		temp: prometheus.NewDesc("camfeed_soc_temperature_celsius", "The SoC's temperature.", nil, nil),
		throttled: prometheus.NewDesc("camfeed_throttled",
			"1 when the firmware reports the flag (vcgencmd get_throttled): under_voltage, arm_freq_capped, throttled, soft_temp_limit; now or since_boot.",
			[]string{"flag", "when"}, nil),
	})
}

type piCollector struct {
	read            func() *pihealth.Reading
	temp, throttled *prometheus.Desc
}

func (c *piCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.temp
	ch <- c.throttled
}

func (c *piCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.read()
	if r == nil {
		return
	}
	if r.TemperatureC != nil {
		ch <- prometheus.MustNewConstMetric(c.temp, prometheus.GaugeValue, *r.TemperatureC)
	}
	if t := r.Throttled; t != nil {
		bit := func(set bool) float64 {
			if set {
				return 1
			}
			return 0
		}
		for _, f := range pihealth.Flags() {
			ch <- prometheus.MustNewConstMetric(c.throttled, prometheus.GaugeValue, bit(t.Now(f)), f.Name, "now")
			ch <- prometheus.MustNewConstMetric(c.throttled, prometheus.GaugeValue, bit(t.SinceBoot(f)), f.Name, "since_boot")
		}
	}
}
