package pihealth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultThermalZone = "/sys/class/thermal/thermal_zone0/temp"
	DefaultInterval    = 5 * time.Second
	// commandTimeout bounds one vcgencmd run: it can hang when the
	// firmware mailbox is wedged.
	commandTimeout = 2 * time.Second
)

// Config says where to read from. The zero value reads this machine.
type Config struct {
	// Vcgencmd is the vcgencmd program; "" looks it up with LookPath.
	Vcgencmd string
	// LookPath finds vcgencmd (exec.LookPath when nil).
	LookPath func(string) (string, error)
	// Run runs a command and returns its standard output
	// (exec.CommandContext(...).Output when nil).
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// ThermalZone is the SoC's sysfs temperature file
	// (DefaultThermalZone when "").
	ThermalZone string
	// Interval between readings (DefaultInterval when zero).
	Interval time.Duration
	// Log receives a line when a throttling flag sets or clears.
	Log *slog.Logger
}

// Reading is one poll's result. A field is nil when its source is missing
// or failed, and is then left out of the JSON.
type Reading struct {
	At           time.Time  `json:"at"`
	TemperatureC *float64   `json:"soc_temperature_celsius,omitempty"`
	Throttled    *Throttled `json:"throttled,omitempty"`
}

// MarshalJSON spells the flags out: the raw value, and the names of those
// set now and since boot.
func (t Throttled) MarshalJSON() ([]byte, error) {
	v := struct {
		Raw       string   `json:"raw"`
		Now       []string `json:"now"`
		SinceBoot []string `json:"since_boot"`
	}{Raw: fmt.Sprintf("0x%x", uint32(t)), Now: []string{}, SinceBoot: []string{}}
	for _, f := range Flags() {
		if t.Now(f) {
			v.Now = append(v.Now, f.Name)
		}
		if t.SinceBoot(f) {
			v.SinceBoot = append(v.SinceBoot, f.Name)
		}
	}
	return json.Marshal(v)
}

// Monitor polls the Pi's health. Build it with New; Run polls until its
// context ends; Latest is safe from any goroutine.
type Monitor struct {
	cfg      Config
	vcgencmd string // "" when not installed
	zone     bool   // the thermal zone file exists
	latest   atomic.Pointer[Reading]

	// Owned by Run's goroutine.
	prev      Throttled
	polled    bool
	vcgFailed bool
}

// New finds what this machine offers. Nothing runs until Run.
func New(cfg Config) *Monitor {
	if cfg.LookPath == nil {
		cfg.LookPath = exec.LookPath
	}
	if cfg.Run == nil {
		cfg.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).Output()
		}
	}
	if cfg.ThermalZone == "" {
		cfg.ThermalZone = DefaultThermalZone
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, vcgencmd: cfg.Vcgencmd}
	if m.vcgencmd == "" {
		m.vcgencmd, _ = cfg.LookPath("vcgencmd")
	}
	_, err := os.Stat(cfg.ThermalZone)
	m.zone = err == nil
	return m
}

// Available reports whether there is anything to read: vcgencmd or the
// thermal zone. Without either, Run returns at once and Latest stays nil.
func (m *Monitor) Available() bool { return m != nil && (m.vcgencmd != "" || m.zone) }

// Latest returns the newest reading, or nil before the first (and always
// on a machine with nothing to read).
func (m *Monitor) Latest() *Reading {
	if m == nil {
		return nil
	}
	return m.latest.Load()
}

// Run reads at once and then every Interval, until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	if !m.Available() {
		return
	}
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll takes one reading, stores it and logs the flags that changed.
func (m *Monitor) poll(ctx context.Context) {
	r := &Reading{At: time.Now()}
	if c, ok := m.temperature(ctx); ok {
		r.TemperatureC = &c
	}
	if m.vcgencmd != "" {
		out, err := m.vcg(ctx, "get_throttled")
		var t Throttled
		if err == nil {
			t, err = ParseThrottled(string(out))
		}
		if err != nil {
			// Said once: a vcgencmd that fails (the service user cannot
			// open /dev/vcio) fails the same way every time.
			if !m.vcgFailed {
				m.cfg.Log.Info("cannot read the Pi's throttling flags; they are left out of the status", "err", err)
				m.vcgFailed = true
			}
		} else {
			r.Throttled = &t
			m.logChanges(t)
		}
	}
	m.latest.Store(r)
}

func (m *Monitor) temperature(ctx context.Context) (float64, bool) {
	if m.zone {
		if b, err := os.ReadFile(m.cfg.ThermalZone); err == nil {
			if c, err := ParseThermalZone(string(b)); err == nil {
				return c, true
			}
		}
	}
	if m.vcgencmd != "" {
		if out, err := m.vcg(ctx, "measure_temp"); err == nil {
			if c, err := ParseMeasureTemp(string(out)); err == nil {
				return c, true
			}
		}
	}
	return 0, false
}

func (m *Monitor) vcg(ctx context.Context, arg string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := m.cfg.Run(ctx, m.vcgencmd, arg)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, fmt.Errorf("vcgencmd %s: %w: %s", arg, err, firstLine(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("vcgencmd %s: %w", arg, err)
	}
	return out, nil
}

// logChanges logs each flag that set (a warning) or cleared since the
// previous reading. The first reading also says what happened since boot
// and is over, once.
func (m *Monitor) logChanges(t Throttled) {
	for _, f := range Flags() {
		switch now, before := t.Now(f), m.prev.Now(f); {
		case now && !before:
			m.cfg.Log.Warn(f.Fault, "throttled", fmt.Sprintf("0x%x", uint32(t)))
		case !now && before:
			m.cfg.Log.Info(f.Cleared, "throttled", fmt.Sprintf("0x%x", uint32(t)))
		case !now && !m.polled && t.SinceBoot(f):
			m.cfg.Log.Warn("since boot, not now: "+f.Fault, "throttled", fmt.Sprintf("0x%x", uint32(t)))
		}
	}
	m.prev, m.polled = t, true
}
