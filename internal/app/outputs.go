package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/camfeed/camfeed/internal/clip"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/hls"
	"github.com/camfeed/camfeed/internal/mse"
	"github.com/camfeed/camfeed/internal/raw"
	"github.com/camfeed/camfeed/internal/record"
	"github.com/camfeed/camfeed/internal/route"
	"github.com/camfeed/camfeed/internal/rtsp"
	"github.com/camfeed/camfeed/internal/snapshot"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/viewer"
	"github.com/camfeed/camfeed/internal/webrtc"
)

// outputs are the HTTP-mounted outputs beyond raw H.264, and the
// recorders. Each is started by start and stopped by stop.
type outputs struct {
	webrtc    *webrtc.Server
	hls       *hls.Server
	clips     *clip.Server
	recorders map[string]*record.Recorder
	rtsp      *rtsp.Server
}

// mount builds the outputs and registers their routes on mux.
func (a *App) mount(mux *route.Mux) error {
	cfg := a.cfg
	o := &a.out
	rawHTTP := &raw.HTTP{Door: a.door, DefaultFeed: a.defaultFeed(), Log: a.log, Observe: a.observe, WriteTimeout: cfg.Limits.WriteTimeout}
	rawHTTP.Register(mux)

	protocols := []string{viewer.MSE, viewer.HLS}
	if cfg.WebRTC != "off" {
		w, err := webrtc.New(webrtc.Config{Addr: cfg.WebRTC, HostIPs: cfg.WebRTCHosts, STUN: cfg.STUN, Keyframes: a}, a.door, a.log.With("output", "webrtc"))
		if err != nil {
			return fmt.Errorf("webrtc: %w", err)
		}
		w.AllowOrigins(cfg.AllowedOrigins)
		w.Register(mux)
		o.webrtc = w
		protocols = append([]string{viewer.WebRTC}, protocols...)
	}
	m := mse.New(a.door, a.log.With("output", "mse"))
	m.WriteTimeout = cfg.Limits.WriteTimeout
	m.AllowOrigins(cfg.AllowedOrigins)
	m.Register(mux)
	o.hls = hls.New(hls.Config{AllowedOrigins: cfg.AllowedOrigins, WriteTimeout: cfg.Limits.WriteTimeout}, a.door, a.log.With("output", "hls"))
	o.hls.Register(mux)
	viewer.New(a, viewer.Options{AllowedOrigins: cfg.AllowedOrigins, Protocols: protocols, NonBrowser: rawHTTP.Default(), NonBrowserFeed: a.defaultFeed()}).Register(mux)

	cc := clipConfig(cfg)
	cc.Door = a.door
	o.clips = clip.New(cc, a, a.log.With("output", "clip"))
	o.clips.Register(mux)
	snapshot.New(snapshot.Config{CacheFor: cfg.SnapshotCache}, a.door, a.log.With("output", "snapshot")).Register(mux)
	o.recorders = map[string]*record.Recorder{}
	for _, name := range a.names {
		if !cfg.Feeds[name].Record {
			continue
		}
		r := record.New(record.Config{
			Dir: cfg.RecordDir, WriteTimeout: cfg.Limits.WriteTimeout, Segment: cfg.RecordSegment, MaxBytes: int64(cfg.RecordMaxBytes.Bytes),
			MaxAge: cfg.RecordMaxAge, MinFree: int64(cfg.RecordMinFree.Bytes), MaxExport: cfg.Limits.MaxExport,
		}, name, a.feeds[name].Hub(), a.log.With("feed", name, "output", "record"))
		r.Register(mux)
		o.recorders[name] = r
	}
	return nil
}

// clipConfig maps the clips_* keys to clip.Config.
func clipConfig(cfg *config.Config) clip.Config {
	keep := cfg.ClipsKeepFor
	if keep == 0 {
		keep = -1 // clips_keep_for: 0 turns the protection off
	}
	return clip.Config{
		Dir: cfg.ClipsDir, MaxSaved: cfg.ClipsMaxSaved, MaxConcurrent: cfg.ClipsMaxConcurrent,
		MaxPerFeed: cfg.ClipsMaxPerFeed, MaxPerUser: cfg.ClipsMaxPerUser, MaxSaving: cfg.ClipsMaxSaving,
		KeepFor: keep, MaxAfter: cfg.ClipsMaxAfter, MinFree: int64(cfg.ClipsMinFree.Bytes),
		AllowedOrigins: cfg.AllowedOrigins,
	}
}

// RequestKeyframe implements webrtc.KeyframeRequester: a viewer's picture
// loss reaches the feed's source when it can make a keyframe on demand.
func (a *App) RequestKeyframe(feed string) {
	if f, ok := a.feeds[feed]; ok {
		if kr, ok := f.Source().(source.KeyframeRequester); ok {
			kr.RequestKeyframe()
		}
	}
}

// startOutputs starts the listeners and goroutines of the outputs; wg
// owns the goroutines.
func (a *App) startOutputs(ctx context.Context, wg *sync.WaitGroup) error {
	o := &a.out
	if o.webrtc != nil {
		if err := o.webrtc.Start(); err != nil && !errors.Is(err, webrtc.ErrDisabled) {
			return a.listenFailed(fmt.Errorf("webrtc on %s: %w", a.cfg.WebRTC, err))
		}
	}
	if err := a.startRTSP(); err != nil {
		return err
	}
	if err := o.hls.Start(); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	for name, r := range o.recorders {
		wg.Go(func() {
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("recording stopped", "feed", name, "err", err)
			}
		})
	}
	return nil
}

// stopOutputs closes what startOutputs started. Safe after a failed start.
func (a *App) stopOutputs() {
	o := &a.out
	if o.webrtc != nil {
		o.webrtc.Close()
	}
	if o.rtsp != nil {
		o.rtsp.Close()
	}
	if o.hls != nil {
		o.hls.Close()
	}
	if o.clips != nil {
		o.clips.Close()
	}
}

// extraStatus adds per-output details to a feed's status.
func (a *App) extraStatus(feed string) map[string]any {
	m := map[string]any{}
	if r, ok := a.out.recorders[feed]; ok {
		m["recording"] = r.Status()
	}
	if a.out.rtsp != nil {
		if ss := a.out.rtsp.Sessions(feed); len(ss) > 0 {
			m["rtsp_sessions"] = ss
		}
	}
	if ps := a.pushes.Status(feed); len(ps) > 0 {
		m["push"] = ps
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
