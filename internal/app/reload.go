package app

import (
	"fmt"
	"reflect"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/source"
)

// Reload applies a new, already validated configuration (SIGHUP). Feeds
// whose settings did not change keep running untouched; a feed whose
// source settings changed gets the new source in the same hub, so its
// viewers stay connected. Users and permissions change at once. What
// cannot change in a running process (listen addresses, the set of feeds,
// a feed's RAM budget or join policy) is logged as needing a restart, and
// never changes what Run started or what its shutdown undoes. On error
// nothing is changed. Safe to call while Run runs, and concurrently.
func (a *App) Reload(cfg *config.Config) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	newAuth, err := auth.New(a.authConfig(cfg))
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	// What needs a restart is judged against what is running (cfg); a
	// feed's source against the settings it was built with.
	running := a.cfg
	var restartNeeded []string
	for _, name := range running.FeedNames() {
		if _, ok := cfg.Feeds[name]; !ok {
			restartNeeded = append(restartNeeded, "removing feed "+name)
		}
	}
	type change struct {
		name string
		fc   config.Feed
	}
	var changes []change
	for _, name := range cfg.FeedNames() {
		if _, ok := running.Feeds[name]; !ok {
			restartNeeded = append(restartNeeded, "adding feed "+name)
			continue
		}
		started, was, now := running.Effective(name), a.sourceCfg[name], cfg.Effective(name)
		if !reflect.DeepEqual(started.Push, now.Push) {
			restartNeeded = append(restartNeeded, "push of feed "+name)
		}
		if started.Buffer != now.Buffer || started.LagBudget != now.LagBudget || started.Join != now.Join || started.StallTimeout != now.StallTimeout {
			restartNeeded = append(restartNeeded, "buffer, lag_budget, join or stall_timeout of feed "+name)
		}
		wasSrc, nowSrc := was, now
		wasSrc.Push, nowSrc.Push = nil, nil // not the source's business
		if !reflect.DeepEqual(wasSrc, nowSrc) {
			changes = append(changes, change{name, now})
		}
	}
	for _, k := range []struct{ key, was, now string }{
		{"http", running.HTTP, cfg.HTTP}, {"tcp", running.TCP, cfg.TCP}, {"fifo", running.FIFO, cfg.FIFO},
		{"unix_dir", running.UnixDir, cfg.UnixDir}, {"rtsp", running.RTSP, cfg.RTSP}, {"webrtc", running.WebRTC, cfg.WebRTC},
	} {
		if k.was != k.now {
			restartNeeded = append(restartNeeded, k.key)
		}
	}
	if serverLimits(running.Limits) != serverLimits(cfg.Limits) {
		restartNeeded = append(restartNeeded, "limits other than max_auth_failures_per_ip, max_auth_failures and max_password_checks")
	}
	// Build every new source first: a failure changes nothing.
	srcs := make(map[string]source.Source, len(changes))
	for _, c := range changes {
		src, err := a.newSource(cfg, c.name, c.fc)
		if err != nil {
			return fmt.Errorf("reload: feed %s: %w", c.name, err)
		}
		srcs[c.name] = src
	}
	a.authz.Store(newAuth)
	for _, c := range changes {
		a.feeds[c.name].Replace(srcs[c.name])
		a.sourceCfg[c.name] = c.fc
		a.log.Info("reload: feed source changed", "feed", c.name)
	}
	if len(restartNeeded) > 0 {
		a.log.Warn("reload: some changes take effect only after a restart (systemctl restart camfeed)", "changes", restartNeeded)
	}
	a.log.Info("config reloaded", "changed_feeds", len(changes))
	return nil
}

// serverLimits is the part of the limits fixed when the listeners and
// outputs start; the password limits go with the authenticator, which a
// reload replaces.
func serverLimits(l limits.Config) limits.Config {
	l.MaxAuthFailuresPerIP, l.MaxAuthFailures, l.MaxPasswordChecks = 0, 0, 0
	return l
}
