package app

import (
	"context"
	"time"

	"github.com/camfeed/camfeed/internal/feed"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/metrics"
	"github.com/camfeed/camfeed/internal/systemd"
)

// FeedNames implements metrics.Feeds.
func (a *App) FeedNames() []string { return a.names }

// FeedStats implements metrics.Feeds.
func (a *App) FeedStats(name string) (hub.Stats, metrics.SourceStatus, bool) {
	f, ok := a.feeds[name]
	if !ok {
		return hub.Stats{}, metrics.SourceStatus{}, false
	}
	st := f.Status()
	state := string(st.State)
	switch st.State {
	case feed.StateRestarting:
		state = "backoff"
	case feed.StateWaiting:
		state = "starting"
	}
	return f.Hub().Stats(), metrics.SourceStatus{State: state, Restarts: uint64(st.Restarts)}, true
}

// systemdHealth decides whether to pet the systemd watchdog.
func (a *App) systemdHealth() (bool, string) {
	hs := make([]systemd.FeedHealth, 0, len(a.names))
	for _, name := range a.names {
		f := a.feeds[name]
		st := f.Status()
		s := f.Hub().Stats()
		hs = append(hs, systemd.FeedHealth{
			Name: name, FPS: s.FPS, Bitrate: s.Bitrate, Viewers: s.ViewersTotal, LastUnit: st.LastUnit,
			Started: a.started, Passive: st.State == feed.StateWaiting,
		})
	}
	wedge := a.WedgeAfter
	if wedge <= 0 {
		wedge = systemd.DefaultWedgeAfter
	}
	return systemd.Health(time.Now(), hs, wedge)
}

// firstKeyframes closes its channel once every feed has had a keyframe.
func (a *App) firstKeyframes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			all := true
			for _, f := range a.feeds {
				if f.Hub().Stats().Keyframes == 0 {
					all = false
				}
			}
			if all {
				close(ch)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}
