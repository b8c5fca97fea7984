package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/camfeed/camfeed/internal/metrics"
	"github.com/camfeed/camfeed/internal/push"
)

// newPushes builds the configured pushes (a feed's push: list, --push for
// the default feed). Nothing connects until startPushes.
func (a *App) newPushes() error {
	a.pushes = push.New(push.Config{}, a.door, a.log.With("output", "push"))
	for _, name := range a.names {
		for i, t := range a.cfg.Feeds[name].Push {
			if err := a.pushes.Add(name, push.Target{URL: t.URL, Token: t.Token}); err != nil {
				return fmt.Errorf("feeds.%s.push[%d]: %w", name, i, err)
			}
		}
	}
	a.metrics.CollectPushes(pushMetrics{a.pushes})
	return nil
}

// startPushes runs the pushes until ctx ends; wg owns them.
func (a *App) startPushes(ctx context.Context, wg *sync.WaitGroup) {
	if a.pushes.Len() > 0 {
		wg.Go(func() { a.pushes.Run(ctx) })
	}
}

// pushMetrics gives the pushes' status to the metrics.
type pushMetrics struct{ p *push.Pushes }

func (m pushMetrics) PushStatuses() []metrics.PushStatus {
	all := m.p.All()
	out := make([]metrics.PushStatus, 0, len(all))
	for _, s := range all {
		out = append(out, metrics.PushStatus{Feed: s.Feed, Target: s.Target, State: s.State,
			Bytes: s.Bytes, Frames: s.Frames, Skipped: s.FramesSkipped, Reconnects: s.Reconnects, Lag: s.Lag})
	}
	return out
}
