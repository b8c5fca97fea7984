package app

import (
	"github.com/camfeed/camfeed/internal/pihealth"
)

// newPiHealth makes the monitor of this machine's Pi health (SoC
// temperature, vcgencmd's throttling flags), and puts its readings in the
// metrics. Where there is nothing to read, the monitor never runs, and
// the status and the metrics show nothing of it.
func (a *App) newPiHealth() *pihealth.Monitor {
	a.metrics.CollectPi(a.piReading)
	return pihealth.New(pihealth.Config{Log: a.log.With("component", "pihealth")})
}

// piReading is the newest reading of a.Pi, or nil.
func (a *App) piReading() *pihealth.Reading { return a.Pi.Latest() }
