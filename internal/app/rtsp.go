package app

import (
	"errors"
	"fmt"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/rtsp"
	"github.com/camfeed/camfeed/internal/source"
)

// Publish implements rtsp.Publishers: a feed whose source is "publish"
// takes one RTSP publisher at a time.
func (a *App) Publish(feed string) (source.Sink, func(), error) {
	f, ok := a.feeds[feed]
	if !ok {
		return nil, nil, fmt.Errorf("no feed %q: %w", feed, rtsp.ErrNotPublishable)
	}
	p, ok := f.Source().(*source.Publish)
	if !ok {
		return nil, nil, fmt.Errorf("feed %s takes its video from %s: %w", feed, f.Source(), rtsp.ErrNotPublishable)
	}
	sink, release, err := p.Attach()
	if errors.Is(err, source.ErrBusy) {
		return nil, nil, fmt.Errorf("feed %s: %w", feed, rtsp.ErrBusy)
	}
	return sink, release, err
}

// rtspAuth adapts the authenticator (which a reload may swap) for RTSP.
type rtspAuth struct{ a *App }

func (r rtspAuth) Allow(feed, action, user, pass, remote string) bool {
	c := auth.Credentials{User: user, Password: pass, From: limits.RemoteIP(remote)}
	_, err := r.a.authz.Load().Check(feed, action, c)
	return err == nil
}

func (r rtspAuth) Password(user string) (string, bool) { return r.a.authz.Load().Password(user) }

// startRTSP starts the RTSP server unless it is off.
func (a *App) startRTSP() error {
	if a.cfg.RTSP == "off" {
		return nil
	}
	rtp, rtcp, derived := a.cfg.RTSPUDP()
	if derived {
		a.log.Info("rtsp: UDP ports follow --rtsp (set --rtsp-udp-rtp and --rtsp-udp-rtcp to choose them)", "rtp", rtp, "rtcp", rtcp)
	}
	s := rtsp.New(rtsp.Config{
		Addr: a.cfg.RTSP, Transports: a.cfg.RTSPTransports, ServerCert: a.cfg.RTSPCert, ServerKey: a.cfg.RTSPKey,
		UDPRTPAddr: rtp, UDPRTCPAddr: rtcp, DefaultFeed: a.defaultFeed(),
		WriteTimeout: a.cfg.Limits.WriteTimeout, PublishTimeout: a.cfg.PublishTimeout,
		Listener: a.connLimit,
	}, a.door, a, rtspAuth{a}, a.log.With("output", "rtsp"))
	if err := s.Start(); err != nil {
		return a.listenFailed(fmt.Errorf("rtsp on %s: %w", a.cfg.RTSP, err))
	}
	a.out.rtsp = s
	return nil
}

// DigestCapable tells RTSP whether Digest can be offered: only when every
// user's password is stored in plain text (a hash cannot answer Digest).
func (r rtspAuth) DigestCapable() bool { return r.a.authz.Load().DigestCapable() }
