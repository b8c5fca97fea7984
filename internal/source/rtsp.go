package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
)

// ErrNotH264 is returned by an RTSP source whose camera offers no H.264
// video.
var ErrNotH264 = errors.New("offers no H.264 video")

// rtspSource pulls H.264 from an RTSP camera or server.
type rtspSource struct {
	url string
	log *slog.Logger
}

// NewRTSP returns a source that reads the H.264 video of an RTSP (or
// RTSPS) URL, such as rtsp://user:pass@192.168.1.20:554/stream1. It tries
// UDP first and falls back to TCP when the camera refuses UDP or no UDP
// packet arrives within 3 s (gortsplib's automatic transport). Run
// returns when the connection fails or ends; the feed's supervisor
// reconnects with backoff.
func NewRTSP(rawURL string, log *slog.Logger) Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &rtspSource{url: rawURL, log: log}
}

// String is the URL without its password, for logs and status.
func (s *rtspSource) String() string {
	u, err := url.Parse(s.url)
	if err != nil {
		return "rtsp (bad URL)"
	}
	return u.Redacted()
}

func (s *rtspSource) Run(ctx context.Context, sink Sink) error {
	u, err := base.ParseURL(s.url)
	if err != nil {
		return fmt.Errorf("rtsp %s: %w", s, err)
	}
	var depack atomic.Pointer[RTPH264]
	c := &gortsplib.Client{
		Scheme: u.Scheme,
		Host:   u.Host,
		OnTransportSwitch: func(err error) {
			s.log.Info("rtsp source: switching transport", "source", s.String(), "reason", err)
		},
		OnPacketsLost: func(uint64) {
			if d := depack.Load(); d != nil {
				d.Lost()
			}
		},
		OnDecodeError: func(err error) {
			s.log.Debug("rtsp source: decode error", "source", s.String(), "err", err)
		},
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("rtsp %s: %w", s, err)
	}
	defer c.Close()
	// A cancel while a request waits for the camera ends the request.
	defer context.AfterFunc(ctx, c.Close)()
	fail := func(step string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("rtsp %s: %s: %w", s, step, err)
	}

	desc, _, err := c.Describe(u)
	if err != nil {
		return fail("describe", err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		var codecs []string
		for _, m := range desc.Medias {
			for _, f := range m.Formats {
				codecs = append(codecs, f.Codec())
			}
		}
		return fmt.Errorf("rtsp %s: %w (it offers %s); camfeed needs H.264",
			s, ErrNotH264, strings.Join(codecs, ", "))
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return fail("setup", err)
	}
	d, err := NewRTPH264(forma, sink)
	if err != nil {
		return fmt.Errorf("rtsp %s: %w", s, err)
	}
	depack.Store(d)
	c.OnPacketRTP(medi, forma, d.Packet)
	if _, err := c.Play(nil); err != nil {
		return fail("play", err)
	}
	transport := "?"
	if tr := c.Transport(); tr != nil && tr.Session != nil {
		transport = tr.Session.Protocol.String()
	}
	s.log.Info("rtsp source: playing", "source", s.String(), "transport", transport)

	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-ctx.Done():
		c.Close()
		<-done
		d.Stop()
		return ctx.Err()
	case err := <-done:
		d.Stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			return fmt.Errorf("rtsp %s: %w", s, ErrEnded)
		}
		return fmt.Errorf("rtsp %s: %w", s, err)
	}
}
