package browsertest

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Sample is one displayed frame whose pixel time code the page read:
// when it was to be shown (Unix ms) and how old its capture was then.
type Sample struct {
	At      float64 `json:"at"`
	Latency float64 `json:"latency"`
	Proto   string  `json:"proto"`
}

// Samples returns the display latency samples the viewer page's player
// collected (the page must be opened with ?measure=1) since index from.
func (p *Page) Samples(ctx context.Context, from int) ([]Sample, error) {
	var s []Sample
	err := p.Eval(ctx, fmt.Sprintf("window.camfeedPlayer ? camfeedPlayer.tcSamples.slice(%d) : []", from), &s)
	return s, err
}

// Playback is what the page's <video> reports.
type Playback struct {
	CurrentTime float64 `json:"currentTime"`
	Decoded     int     `json:"decoded"`
	Dropped     int     `json:"dropped"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	State       string  `json:"state"`
	Protocol    string  `json:"protocol"`
	FirstFrame  float64 `json:"firstFrame"` // ms from navigation start to the first frame shown
	JoinMs      float64 `json:"joinMs"`     // ms from the player's request to the first frame shown
	Overlay     string  `json:"overlay"`
}

// Playback reads the viewer page's video element and player state.
func (p *Page) Playback(ctx context.Context) (Playback, error) {
	var pb Playback
	err := p.Eval(ctx, `(() => {
		const v = document.querySelector("video"), q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
		const pl = window.camfeedPlayer, o = document.getElementById("overlay");
		return {currentTime: v.currentTime, decoded: q.totalVideoFrames || 0, dropped: q.droppedVideoFrames || 0,
			width: v.videoWidth, height: v.videoHeight, state: pl ? pl.stats.state : "",
			protocol: pl ? pl.stats.protocol : "", firstFrame: pl && pl.gotFrame ? pl.startedAt + pl.firstFrameMs : -1,
			joinMs: pl && pl.gotFrame ? pl.firstFrameMs : -1,
			overlay: o ? o.textContent : ""};
	})()`, &pb)
	return pb, err
}

// Latencies returns the latencies of samples, sorted.
func Latencies(s []Sample) []float64 {
	l := make([]float64, len(s))
	for i, x := range s {
		l[i] = x.Latency
	}
	slices.Sort(l)
	return l
}

// Percentile returns the p-th percentile (0..100) of sorted values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return sorted[i]
}

// Window returns the samples shown within [from, to) after start.
func Window(s []Sample, start float64, from, to time.Duration) []Sample {
	var out []Sample
	for _, x := range s {
		d := time.Duration((x.At - start) * float64(time.Millisecond))
		if d >= from && d < to {
			out = append(out, x)
		}
	}
	return out
}
