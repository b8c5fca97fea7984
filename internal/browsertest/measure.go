package browsertest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsupport"
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

// Played is what Watch saw of a page playing the test pattern.
type Played struct {
	Before, After Playback
	Samples       []Sample
}

// Watch waits for a viewer page (opened with ?measure=1) to play: its
// media time advances by 2 s, 30 more frames are decoded, and at least
// minSamples pictures with a readable pixel time code are shown (a picture
// decoded corrupt has none). These are checks a busy machine cannot fail,
// only delay: the wait is a generous functional timeout. The display
// latency is logged, not judged; docs/PERFORMANCE.md has the figures and
// how they are measured.
func Watch(t testing.TB, p *Page, proto string, minSamples int) Played {
	t.Helper()
	if err := p.WaitFor(`window.camfeedPlayer && camfeedPlayer.stats.state === "playing"`, 3*testsupport.Patience); err != nil {
		t.Fatalf("%s: %v", proto, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*testsupport.Patience)
	defer cancel()
	var pl Played
	var err error
	if pl.Before, err = p.Playback(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * testsupport.Patience)
	for {
		time.Sleep(500 * time.Millisecond)
		if pl.After, err = p.Playback(ctx); err != nil {
			t.Fatal(err)
		}
		if pl.Samples, err = p.Samples(ctx, 0); err != nil {
			t.Fatal(err)
		}
		b, a := pl.Before, pl.After
		if a.CurrentTime >= b.CurrentTime+2 && a.Decoded >= b.Decoded+30 && len(pl.Samples) >= minSamples {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: video does not play: time %.2f→%.2f s, frames %d→%d, %d pictures with a readable time code (want %d) in %v",
				proto, b.CurrentTime, a.CurrentTime, b.Decoded, a.Decoded, len(pl.Samples), minSamples, 3*testsupport.Patience)
		}
	}
	lat := Latencies(pl.Samples)
	t.Logf("%s: first frame %.0f ms after navigation; display latency over %d frames: p50 %.0f ms, p95 %.0f ms (logged, not judged); %+v",
		proto, pl.Before.FirstFrame, len(lat), Percentile(lat, 50), Percentile(lat, 95), pl.After)
	return pl
}

// Shot saves a screenshot of the page under ArtifactDir, for a person to
// look at.
func Shot(t testing.TB, p *Page, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*testsupport.Patience)
	defer cancel()
	path := filepath.Join(ArtifactDir(), name)
	if err := p.Screenshot(ctx, path); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// Join opens a second page on a running stream and waits for its first
// picture. How soon it came is logged: it is a measured figure
// (docs/PERFORMANCE.md), not a check on a shared machine.
func Join(t testing.TB, b *Browser, url string) Playback {
	t.Helper()
	p := b.NewPage(t, url, 640, 480)
	if err := p.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame`, 3*testsupport.Patience); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*testsupport.Patience)
	defer cancel()
	pb, err := p.Playback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("joining page: first picture %.0f ms after the player asked, %.0f ms after navigation", pb.JoinMs, pb.FirstFrame)
	return pb
}
