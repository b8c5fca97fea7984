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
	case feed.StateWaiting:
		state = "starting"
	}
	hs := f.Hub().Stats()
	// Viewers are the door's sessions, whatever the protocol (the hub sees
	// one reader for all of WebRTC's or LL-HLS's viewers of a feed).
	hs.Viewers = a.door.Count(name)
	hs.ViewersTotal = 0
	for _, n := range hs.Viewers {
		hs.ViewersTotal += n
	}
	ss := metrics.SourceStatus{State: state, Restarts: uint64(st.Restarts)}
	if c, ok := f.Source().(interface{ CameraDrops() (uint64, bool) }); ok {
		ss.CameraDropped, ss.HasCameraDropped = c.CameraDrops()
	}
	return hs, ss, true
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

// SessionTotals implements metrics.Sessions from the door's accounting.
func (a *App) SessionTotals(feed string) map[string]metrics.SessionTotals {
	out := map[string]metrics.SessionTotals{}
	for proto, t := range a.door.Totals(feed) {
		out[proto] = metrics.SessionTotals{Sessions: t.Sessions, Bytes: t.Bytes, Skips: t.Skips}
	}
	return out
}
